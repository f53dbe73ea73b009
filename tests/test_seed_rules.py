"""The staked rule sets of spec §5: every check value, conservation, determinism, and the
commitment binding stake and bid."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from curation.commitment import commitment
from curation.market import MarketConfig, apply_block
from curation.payload import PayloadLimits, parse_payload
from curation.records import Block, Comment, CommitMsg, MarketOp, RevealMsg
from curation.state import Account, Globals, State
from curation_market.cli.main import app
from curation_market.config import ConfigError, load_settings
from curation_market.curator.ops import commit_payload, custom_json_op, reveal_payload
from rewards import mmc, numerai, proper, yuma
from rewards.outcome import WEEK, Forecast, Outcome, by_epoch, stake_of
from rewards.staked import STAKED_RULES, settle_staked

SALT = bytes(range(32))


# --- numerai-2018 ---------------------------------------------------------------------------

def test_numerai_2018_auction_check_values() -> None:
    auction = numerai.probability_auction([(0.9, 100), (0.8, 200), (0.7, 300), (0.6, 400)], 500)
    assert auction.cutoff == pytest.approx(0.6)
    assert [float(f) for f in auction.filled] == [100, 200, 300, 150]  # last filled 150
    pays = [float(numerai.earning_2018(f, auction.cutoff)) for f in auction.filled]
    assert [round(p, 2) for p in pays] == [66.67, 133.33, 200, 100]
    assert sum(pays) == pytest.approx(500)
    assert numerai.expected_value_2018(0.65, 0.6, 100) == pytest.approx(8.333, abs=1e-3)
    assert numerai.expected_value_2018(0.6, 0.6, 100) == pytest.approx(0)  # p = p̂ breaks even


def test_numerai_2018_edge_cutoffs() -> None:
    # too little stake to exhaust the pool: everyone filled at the lowest bid
    a = numerai.probability_auction([(0.9, 10), (0.5, 10)], 1000)
    assert a.cutoff == pytest.approx(0.5) and [float(f) for f in a.filled] == [10, 10]
    # the higher stakes exhaust the pool before the next bid's own P: P rises to S/(S+pool)
    a = numerai.probability_auction([(0.9, 1000), (0.2, 10)], 500)
    assert float(a.cutoff) == pytest.approx(1000 / 1500)
    assert [float(f) for f in a.filled] == [1000, 0]
    # invalid bids never fill
    a = numerai.probability_auction([(0.0, 100), (1.5, 100)], 50)
    assert a.cutoff is None and all(f == 0 for f in a.filled)


def _outcome(forecasts: list[Forecast], final: int = 100_000, pool: int = 500_000,
             paid_at: int = 1_500_000_000, permlink: str = "p") -> Outcome:
    return Outcome("bob", permlink, paid_at - 7 * 86400, paid_at, final, pool,
                   tuple(forecasts))


def test_numerai_2018_settle_in_milli_units() -> None:
    # the spec's bids as milli-stakes; three land in the band of F = 100, the last misses
    fc = [Forecast("a", 95_000, 0, 0, 100_000, 0.9), Forecast("b", 91_000, 0, 0, 200_000, 0.8),
          Forecast("c", 100_000, 0, 0, 300_000, 0.7), Forecast("d", 50_000, 0, 0, 400_000, 0.6),
          Forecast("e", 99_000, 0, 0, 400_000, 0.5)]  # below the cutoff: sits out
    s = settle_staked("numerai-2018", [_outcome(fc)])
    assert [(a.predictor, a.amount) for a in s.awards] == [
        ("a", 66_666), ("b", 133_333), ("c", 200_000), ("d", -150_000)]
    assert s.paid == 399_999 and s.returned == 100_001 and s.burned == 150_000
    assert s.rounds[0].info == (("cutoff_p", pytest.approx(0.6)),)


# --- numerai-2019 ---------------------------------------------------------------------------

def test_numerai_2019_check_values() -> None:
    a = numerai.benchmark_auction([(0.53, 200), (0.52, 200), (0.51, 300)], 500)
    assert a.benchmark == 0.51 and a.filled == (200, 200, 100)  # last filled 100
    expected = {0.525: (200, 150, 127.0298), 0.50: (-200, -100, -92.4234)}
    for score, values in expected.items():
        got = [numerai.payout_2019(200, score, a.benchmark, curve, 0.02)
               for curve in ("sign", "clip", "tanh")]
        assert got == pytest.approx(values, abs=1e-4)
        # the exact path settle_2019 pays with: score = min(P,F)/max(P,F) = P/1000 here
        exact = [float(numerai._exact_payout(200, round(score * 1000), 1000, a.benchmark,  # noqa: SLF001
                                             curve, 0.02)) for curve in ("sign", "clip", "tanh")]
        assert exact == pytest.approx(values, abs=1e-4)
    assert numerai.payout_curve(0.0, "sign") == 0
    assert numerai.accuracy(90, 100) == 0.9 and numerai.accuracy(0, 0) == 1.0
    assert numerai.accuracy(0, 5) == 0.0
    # bids the payload parser would refuse never fill (Outcome is a public table)
    bad = numerai.benchmark_auction([(math.nan, 100), (math.inf, 100), (-0.5, 100), (0.6, 100)],
                                    500)
    assert bad.filled == (0, 0, 0, 100) and bad.benchmark == 0.6


def test_numerai_2019_settle_pays_and_burns_around_the_benchmark() -> None:
    fc = [Forecast("a", 100_000, 0, 0, 200_000, 0.95), Forecast("b", 80_000, 0, 0, 200_000, 0.9),
          Forecast("c", 90_000, 0, 0, 300_000, 0.85)]
    s = settle_staked("numerai-2019", [_outcome(fc)], width=0.1)
    # B = 0.85 (c is the marginal, 100 of 300 filled): a = 1.0, 0.8, 0.9
    assert [(x.predictor, x.amount) for x in s.awards] == [
        ("a", 200_000), ("b", -100_000), ("c", 50_000)]
    assert (s.paid, s.returned, s.burned) == (250_000, 250_000, 100_000)


# --- mmc -------------------------------------------------------------------------------------

PREDS = [0.1, 0.4, 0.35, 0.8, 0.6]
CONSENSUS = [0.2, 0.3, 0.5, 0.7, 0.9]
TARGET = [0, 0.25, 0.5, 1, 0.75]


def test_mmc_check_values() -> None:
    assert mmc.mmc(PREDS, CONSENSUS, TARGET) == pytest.approx(0.286244, abs=1e-6)
    assert mmc.corr_independence(PREDS, CONSENSUS, TARGET) == pytest.approx(0.201849, abs=1e-6)


def test_mmc_of_the_consensus_itself_is_zero() -> None:
    assert mmc.mmc(CONSENSUS, CONSENSUS, TARGET) == pytest.approx(0, abs=1e-12)
    assert mmc.corr_independence(CONSENSUS, CONSENSUS, TARGET) == pytest.approx(0, abs=1e-12)


def test_mmc_settle_pays_the_contrarian_who_is_right() -> None:
    # a herd of three agrees on a wrong order; "lone" ranks the posts by their real payouts
    finals = [5_000, 40_000, 10_000, 80_000, 20_000]
    herd = [60_000, 10_000, 40_000, 20_000, 70_000]
    outs = []
    for j, final in enumerate(finals):
        fc = [Forecast(f"herd{k}", herd[j] + 100 * k, 0, 0, 10_000, None) for k in range(3)]
        fc.append(Forecast("lone", final, 0, 0, 10_000, None))
        outs.append(_outcome(fc, final, 1_000, 1_500_000_000 + j, f"p{j}"))
    s = settle_staked("mmc", outs)
    totals = s.totals()
    # the herd adds nothing to a consensus it makes up (MMC ≈ 0: no award either way);
    # lone's contribution is capped by the epoch's pool of 5 × 1.000
    assert totals == {"lone": 5_000} and s.returned == 0
    assert s.awards[0].epoch == 1_500_000_000 - 1_500_000_000 % WEEK


# --- yuma ------------------------------------------------------------------------------------

def test_yuma_check_values() -> None:
    step = yuma.yuma_step([0.5, 0.3, 0.2], [[0.6, 0.4, 0], [0.5, 0.5, 0], [0, 0.1, 0.9]],
                          kappa=0.5, alpha=0.1)
    assert step.consensus == pytest.approx([0.6, 0.4, 0])
    assert step.incentive == pytest.approx([0.569620, 0.430380, 0], abs=1e-6)
    assert step.dividends == pytest.approx([0.632911, 0.341772, 0.025316], abs=1e-6)


def test_yuma_inflation_check_values() -> None:
    s = yuma.inflate([10, 20, 30], [[0, .7, .3], [.5, 0, .5], [.5, .5, 0]], tau=1)
    assert s == pytest.approx([10.416667, 20.366667, 30.216667], abs=1e-6)


def test_yuma_bonds_keep_an_early_backer_ahead() -> None:
    # "early" backs author x in epoch 1 alone; in epoch 2 everyone backs x equally
    def ep(week: int, names: list[str]) -> Outcome:
        fc = [Forecast(n, 10_000, 0, 0, 1_000, None) for n in names]
        return Outcome("x", f"p{week}", 0, WEEK * week + 10, 10_000, 1_000, tuple(fc))

    outs = [ep(1, ["early"]), ep(2, ["early", "late"])]
    by_author = settle_staked("yuma", outs, miners="author")
    second = [a for a in by_author.awards if a.epoch == 2 * WEEK]
    amounts = {a.predictor: a.amount for a in second}
    assert amounts["early"] > amounts["late"]  # the EMA remembers who bonded first
    by_post = settle_staked("yuma", outs)  # posts live one epoch: no memory, equal split
    amounts = {a.predictor: a.amount for a in by_post.awards if a.epoch == 2 * WEEK}
    assert amounts == {"early": 500, "late": 500}


# --- proper ----------------------------------------------------------------------------------

def test_proper_score_is_bounded_and_peaks_at_the_outcome() -> None:
    assert proper.score(10_000, 10_000) == 1.0
    assert 0 < proper.score(5_000, 10_000) < proper.score(9_000, 10_000) < 1
    assert proper.score(10_000_000, 0) >= 0
    # the score is the quadratic score rescaled: same ordering, affine map
    mu, sigma = 2.0, 0.25
    qs = [proper.quadratic_score(y, mu, sigma) for y in (1.5, 2.0, 2.3)]
    f_mu = 1 / (sigma * math.sqrt(2 * math.pi))
    norm2 = 1 / (2 * sigma * math.sqrt(math.pi))
    for y, q in zip((1.5, 2.0, 2.3), qs, strict=True):
        assert (q + norm2) / (2 * f_mu) == pytest.approx(math.exp(-((y - mu) / sigma) ** 2 / 2))


def test_proper_score_rewards_the_honest_report() -> None:
    """Belief: ln(1+F) ~ N(m, s²). The expected score over that belief peaks at the report
    ln(1+P) = m — the band's best report is ≈ 0.95 × the median, this rule's is the median."""
    rng = np.random.default_rng(3)
    m, s = math.log1p(20.0), 0.3
    outcomes = [round(math.expm1(y) * 1000) for y in rng.normal(m, s, 4000)]
    reports = [round(math.expm1(m + d) * 1000) for d in np.linspace(-0.4, 0.4, 17)]
    expected = [np.mean([proper.score(p, f) for f in outcomes]) for p in reports]
    assert int(np.argmax(expected)) == 8  # d = 0: the honest report


def test_proper_settle_pays_stake_share_times_score() -> None:
    fc = [Forecast("a", 100_000, 0, 0, 3_000, None), Forecast("b", 50_000, 0, 0, 1_000, None)]
    s = settle_staked("proper", [_outcome(fc, 100_000, 40_000)])
    want_b = math.floor(40_000 * 0.25 * proper.score(50_000, 100_000))
    assert [(a.predictor, a.amount) for a in s.awards] == [("a", 30_000), ("b", want_b)]
    assert s.returned == 40_000 - 30_000 - want_b and s.burned == 0


# --- every rule set: conservation, determinism, defaults --------------------------------------

names = st.sampled_from(["ann", "ben", "cat", "dan", "eve", "fay"])
forecast = st.builds(
    Forecast, names, st.integers(0, 500_000), st.just(0), st.integers(0, 50_000),
    st.one_of(st.none(), st.integers(0, 300_000)),
    st.one_of(st.none(), st.integers(0, 1000).map(lambda m: m / 1000)))
outcome = st.builds(
    lambda k, t, final, frac, fc: Outcome("bob", f"p{k}", t - 3600, t, final,
                                          final * frac // 4, tuple(fc)),
    st.integers(0, 10_000), st.integers(1_500_000_000, 1_500_000_000 + 5 * WEEK),
    st.integers(0, 400_000), st.integers(0, 2), st.lists(forecast, max_size=6))


@settings(max_examples=60, deadline=None)
@given(st.lists(outcome, max_size=12), st.sampled_from(sorted(STAKED_RULES)))
def test_conservation_every_rule_set(outs: list[Outcome], name: str) -> None:
    s = settle_staked(name, outs)
    assert s.paid + s.returned == s.pools == sum(o.pool for o in outs)
    assert s.burned >= 0 and s.returned >= 0
    assert all(isinstance(a.amount, int) and a.amount != 0 for a in s.awards)
    for r in s.rounds:
        assert r.paid + r.returned == r.pool and r.paid >= 0


@settings(max_examples=30, deadline=None)
@given(st.lists(outcome, max_size=10, unique_by=lambda o: o.permlink),
       st.sampled_from(sorted(STAKED_RULES)), st.randoms(use_true_random=False))
def test_input_order_changes_nothing(outs: list[Outcome], name: str, rnd: random.Random
                                     ) -> None:
    first = settle_staked(name, outs)
    shuffled = outs[:]
    rnd.shuffle(shuffled)
    again = settle_staked(name, shuffled)
    assert again.totals() == first.totals()
    assert (again.paid, again.returned, again.burned) == (first.paid, first.returned,
                                                          first.burned)
    assert settle_staked(name, outs) == first  # same input → the very same settlement


def test_default_stake_and_bid() -> None:
    f = Forecast("a", 1, 0, 7_000)
    assert stake_of(f, None) == 7_000  # Steem Power at commit
    assert stake_of(f, 500) == 500
    assert stake_of(dataclasses.replace(f, stake=9), None) == 9
    assert STAKED_RULES["numerai-2018"].params.default_bid == 0.5
    assert STAKED_RULES["numerai-2019"].params.default_bid == 0.9


def test_epochs_align_to_chain_time() -> None:
    outs = [_outcome([], paid_at=t, permlink=str(t)) for t in (WEEK * 3 + 5, WEEK * 3 - 1,
                                                                 WEEK * 4)]
    groups = by_epoch(outs)
    assert [(start, [o.paid_at for o in g]) for start, g in groups] == [
        (2 * WEEK, [WEEK * 3 - 1]), (3 * WEEK, [WEEK * 3 + 5]), (4 * WEEK, [WEEK * 4])]
    with pytest.raises(ValueError):
        by_epoch(outs, 0)


# --- commitment binding stake and bid ---------------------------------------------------------

def _framed(*fields: bytes) -> str:
    h = hashlib.sha256()
    for f in fields:
        h.update(len(f).to_bytes(4, "big") + f)
    return h.hexdigest()


def test_commitment_with_stake_and_bid_vector() -> None:
    base = ("0" * 64, "heimindanger", "dtube-0-3", "alice", 95000, SALT)
    assert commitment(*base) == "f6fd7b2a961b547177d7e345123bd044a48571de689616e4360dbf7e8fddfcdd"
    fields = (b"curation-market/v1", b"0" * 64, b"heimindanger", b"dtube-0-3", b"alice",
              b"95000", SALT)
    got = commitment(*base, 10_000, 600)  # stake "10.000", bid "0.600"
    assert got == _framed(*fields, b"stake:10000", b"bid:600")
    assert got == "9517434890deeb7ff626e4dc07b58f50501a55ecfa73a12fd3f021f273585c93"
    # the tags keep a stake-only and a bid-only commitment with the same digits apart
    assert commitment(*base, 600, None) != commitment(*base, None, 600)
    assert commitment(*base, 10_001, 600) != got != commitment(*base, 10_000, 601)


def _chain_with_commit(stake: int | None, bid: int | None) -> tuple[State, MarketConfig]:
    cfg = MarketConfig()
    state = State(globals=Globals(1000, 1000))
    state.accounts["alice"] = Account("alice", vesting_shares=1000)
    t0 = 1_500_000_000
    apply_block(state, Block(100, t0, records=[Comment((100, 0, 0), "bob", "p", "", "tag")]),
                cfg)
    c = commitment(cfg.chain_id, "bob", "p", "alice", 95_000, SALT, stake, bid)
    apply_block(state, Block(101, t0 + 60, records=[
        MarketOp((101, 0, 0), "alice", (CommitMsg("bob", "p", c),))]), cfg)
    return state, cfg


def _reveal(state: State, cfg: MarketConfig, num: int, stake: int | None,
            bid: int | None) -> None:
    apply_block(state, Block(num, 1_500_000_000 + 2000 + num, records=[
        MarketOp((num, 0, 0), "alice", (RevealMsg("bob", "p", 95_000, SALT, stake, bid),))]),
        cfg)


def test_changing_stake_or_bid_breaks_the_reveal() -> None:
    state, cfg = _chain_with_commit(10_000, 600)
    _reveal(state, cfg, 102, 20_000, 600)  # a bigger stake after seeing the votes
    _reveal(state, cfg, 103, 10_000, 700)
    _reveal(state, cfg, 104, None, None)  # dropping them is a change too
    assert [r.reason for r in state.rejections] == ["hash_mismatch"] * 3
    _reveal(state, cfg, 105, 10_000, 600)
    commit = state.commits[(1, "alice")]
    assert (commit.prediction, commit.stake, commit.bid) == (95_000, 10_000, 600)


def test_reveal_without_stake_still_opens_a_v1_commitment() -> None:
    state, cfg = _chain_with_commit(None, None)
    _reveal(state, cfg, 102, 5_000, None)  # adding a stake the commit did not bind
    _reveal(state, cfg, 103, None, None)
    assert [r.reason for r in state.rejections] == ["hash_mismatch"]
    assert state.commits[(1, "alice")].prediction == 95_000


def test_ops_round_trip_through_the_payload_parser() -> None:
    commit_doc = commit_payload("0" * 64, "bob", "p", "alice", 95_000, SALT, 10_000, 600)
    reveal_doc = reveal_payload("bob", "p", 95_000, SALT, 10_000, 600)
    (msg,) = parse_payload(json.dumps(reveal_doc), PayloadLimits())
    assert isinstance(msg, RevealMsg) and (msg.stake, msg.bid) == (10_000, 600)
    assert type(msg.bid) is int  # never a float on its way to the commitment
    assert reveal_doc["stake"] == "10.000" and reveal_doc["bid"] == "0.600"
    assert commit_doc["commitment"] == commitment("0" * 64, "bob", "p", "alice", 95_000, SALT,
                                                  10_000, 600)


# --- config and the report path -----------------------------------------------------------------

runner = CliRunner()


def test_config_knows_the_staked_names(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[rules]\nname = "numerai-2020"\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(bad)
    assert "rules.name" in str(exc.value)
    for known in ("seed", "numerai-2018", "numerai-2019", "mmc", "yuma", "proper"):
        assert known in str(exc.value)
    bad.write_text('[rules]\nname = "mmc"\ndefault_stake = "lots"\n')
    with pytest.raises(ConfigError, match="rules.default_stake"):
        load_settings(bad)
    good = tmp_path / "good.toml"
    good.write_text('[rules]\nname = "mmc"\nepoch_days = 3\ndefault_stake = "2.500"\n')
    settings_ = load_settings(good)
    name, params = settings_.staked_rules()
    assert name == "mmc" and params.epoch_seconds == 3 * 86400 and params.default_stake == 2500
    assert settings_.market_config().rules.name == "seed"  # the engine replays the seed table
    assert load_settings(None).staked_rules() is None


def _block(num: int, t: int, ops: list, vops: list | None = None) -> dict:
    from curation.chaintime import format_time

    return {"block_num": num, "block_id": f"{num:08x}" + "0" * 32,
            "previous": f"{num - 1:08x}" + "0" * 32, "timestamp": format_time(t),
            "transactions": [{"operations": [op]} for op in ops],
            "virtual_ops": vops or []}


def test_report_with_a_staked_rule_set(tmp_path: Path) -> None:
    """Replay two curators staking through the real commit–reveal path, then report the
    same database under numerai-2018: the staked section pays the hit and burns the miss."""
    t0 = 1_500_000_000
    cid = "0" * 64
    picks = {"alice": (95_000, 100_000, 800), "carol": (50_000, 10_000, 900)}
    commits = [custom_json_op("curation_market", who, commit_payload(
        cid, "bob", "p", who, pred, SALT, stake, bid)) for who, (pred, stake, bid) in
        picks.items()]
    reveals = [custom_json_op("curation_market", who, reveal_payload(
        "bob", "p", pred, SALT, stake, bid)) for who, (pred, stake, bid) in picks.items()]
    blocks = [
        _block(1, t0, [["comment", {"parent_author": "", "parent_permlink": "t",
                                    "author": "bob", "permlink": "p", "title": "",
                                    "body": "", "json_metadata": ""}]]),
        _block(2, t0 + 60, commits),
        _block(3, t0 + 2000, reveals),
        _block(4, t0 + 7 * 86400, [], [["comment_reward", {
            "author": "bob", "permlink": "p", "payout": "100.000 SBD"}]]),
    ]
    src = tmp_path / "blocks.jsonl"
    src.write_text("".join(json.dumps(b) + "\n" for b in blocks))
    db = f"sqlite:///{tmp_path / 'm.db'}"
    result = runner.invoke(app, ["replay", str(src), "--db", db])
    assert result.exit_code == 0, result.stderr
    cfg = tmp_path / "staked.toml"
    cfg.write_text('[rules]\nname = "numerai-2018"\n')
    result = runner.invoke(app, ["report", "--db", db, "--config", str(cfg), "--format",
                                 "json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    staked = doc["staked"]
    # pool 25.000: carol (0.9) fills 10, alice (0.8) fills 90 of 100 → P = 0.8;
    # alice lands in the band and earns 90·0.2/0.8 = 22.5, carol misses and burns 10
    assert staked["rules"] == "numerai-2018" and staked["pools"] == 25_000
    assert {c["curator"]: c["net"] for c in staked["curators"]} == {"alice": 22_500,
                                                                     "carol": -10_000}
    assert (staked["paid"], staked["returned"], staked["burned"]) == (22_500, 2_500, 10_000)
    assert staked["rounds"][0]["cutoff_p"] == pytest.approx(0.8)
    table = runner.invoke(app, ["report", "--db", db, "--config", str(cfg)])
    assert table.exit_code == 0 and "Staked rule set numerai-2018" in table.stdout


def test_cli_stake_and_bid_round_trip(tmp_path: Path) -> None:
    salts = tmp_path / "salts.json"
    args = ["--author", "bob", "--permlink", "p", "--predictor", "alice",
            "--salt-file", str(salts)]
    result = runner.invoke(app, ["prepare", "commit", *args, "--prediction", "95",
                                 "--stake", "10", "--bid", "0.6"])
    assert result.exit_code == 0, result.stderr
    (commit_msg,) = parse_payload(json.loads(result.stdout)[1]["json"], PayloadLimits())
    result = runner.invoke(app, ["prepare", "reveal", *args])
    assert result.exit_code == 0, result.stderr
    (reveal_msg,) = parse_payload(json.loads(result.stdout)[1]["json"], PayloadLimits())
    assert isinstance(reveal_msg, RevealMsg) and (reveal_msg.stake, reveal_msg.bid) == (
        10_000, 600)
    assert isinstance(commit_msg, CommitMsg)
    assert commit_msg.commitment == commitment("0" * 64, "bob", "p", "alice", 95_000,
                                               reveal_msg.salt, 10_000, 600)
    result = runner.invoke(app, ["commitment", "--author", "heimindanger", "--permlink",
                                 "dtube-0-3", "--predictor", "alice", "--prediction", "95",
                                 "--salt", SALT.hex(), "--stake", "10", "--bid", "0.6"])
    assert result.stdout.strip() == \
        "9517434890deeb7ff626e4dc07b58f50501a55ecfa73a12fd3f021f273585c93"
    for bad in (["--bid", "1.5"], ["--bid", "-0.1"], ["--stake", "ten"]):
        result = runner.invoke(app, ["commitment", "--author", "bob", "--permlink", "p",
                                     "--predictor", "alice", "--prediction", "1", *bad])
        assert result.exit_code == 2 and bad[0] in result.stderr
