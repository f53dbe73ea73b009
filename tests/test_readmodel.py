"""One read model (indexer/readmodel.py) behind the API, ``report`` and the lab's outcomes.

Before: the report and the API each had their own SQL and shapes, so for the same demo
curator the CLI printed "predictions 6, hits 5" (reputation's N and R) and the page
"predictions 12, in band 10"; the band was written out five times; ``report``'s Outcome
table kept markets nobody predicted and the lab's dropped them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, literal, select

from curation_market.api.app import create_app, make_engine
from curation_market.lab.demo import demo_settings
from curation_market.lab.runner import outcomes_of
from curation_market.report.build import build_report, load_outcomes
from indexer.readmodel import NOT_IN_REPORT, PREDICTION_NOT_IN_REPORT
from rewards.band import band, in_band
from tests.helpers import PAYOUT_AT, Stream, ingest, market_stream, new_store, run_memory

CFG = demo_settings().market_config()


@pytest.fixture(scope="module")
def client(demo_db) -> TestClient:
    return TestClient(create_app(make_engine(demo_db["url"]), CFG))


@pytest.fixture(scope="module")
def report(demo_db) -> dict:
    return build_report(create_engine(demo_db["url"]))


def _pages(client: TestClient, path: str, params: dict) -> list[dict]:
    items, cursor = [], None
    for _ in range(100):  # deadline: the demo has a few hundred markets
        body = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        items += body.json()["items"]
        cursor = body.json()["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError(f"{path}: more than 100 pages")


def test_report_and_api_show_every_settled_market_alike(client, report) -> None:
    settled = _pages(client, "/api/markets", {"phase": "settled", "limit": 200})
    assert len(report["markets"]) == len(settled) > 20
    assert sum(len(m["predictions"]) for m in report["markets"]) > 100
    api_status = client.get("/api/status").json()
    assert (report["as_of_block"], report["as_of_time"], report["rules"]) == \
        (api_status["as_of_block"], api_status["as_of_time"], api_status["rules"])
    for m in report["markets"]:
        body = client.get(f"/api/markets/{m['author']}/{m['permlink']}").json()
        api = body["market"]
        assert set(api) - set(m) == set(NOT_IN_REPORT)  # the row id and the window ends
        preds = api.pop("predictions")
        assert [{k: v for k, v in p.items() if k not in PREDICTION_NOT_IN_REPORT}
                for p in preds] == m["predictions"]
        assert {k: v for k, v in api.items() if k not in NOT_IN_REPORT} == \
            {k: v for k, v in m.items() if k != "predictions"}
        assert all(set(p) - set(r) == set(PREDICTION_NOT_IN_REPORT)
                   for p, r in zip(preds, m["predictions"], strict=True))


def test_curator_counts_have_one_name_each(client, report) -> None:
    """The CLI's curators table, ``/api/curators/{name}`` and the leaderboard give each count
    under one name with one value; ``in_band`` agrees with the band test run in Python."""
    board = {i["curator"]: i for i in _pages(client, "/api/leaderboard", {"limit": 200})}
    settled = Counter()
    hits = Counter()
    for m in report["markets"]:
        for p in m["predictions"]:
            settled[p["predictor"]] += 1
            hits[p["predictor"]] += p["revealed"] and in_band(p["prediction"],
                                                              m["final_payout"])
    assert board and set(board) == set(settled)
    counted_fewer = 0
    for cur in report["curators"]:
        name = cur["curator"]
        api = client.get(f"/api/curators/{name}").json()
        assert {k: api[k] for k in cur} == cur
        if name in board:
            assert {k: cur[k] for k in board[name]} == board[name]
        assert (cur["predictions"], cur["in_band"]) == (settled[name], hits[name])
        assert cur["r"] <= cur["n"] <= cur["predictions"]
        assert cur["in_band"] <= cur["predictions"] and cur["rewarded"] <= cur["predictions"]
        counted_fewer += cur["n"] < cur["predictions"]
    assert counted_fewer, "the demo has posts below the reputation minimum: N differs"
    assert [c["curator"] for c in report["curators"] if c["curator"] in board] == list(board)


def test_the_band_is_one_function(client, report) -> None:
    """The API's ``band`` is :func:`rewards.band.band`; every revealed prediction is inside
    it exactly when :func:`rewards.band.in_band` says so, and settlement qualified only those."""
    seen = 0
    for m in report["markets"]:
        s = client.get(f"/api/markets/{m['author']}/{m['permlink']}").json()["market"][
            "settlement"]
        final = s["final_payout"]
        assert s["band"] == list(band(final))
        lo, hi = s["band"]
        for p in m["predictions"]:
            if not p["revealed"]:
                continue
            seen += 1
            inside = in_band(p["prediction"], final)
            assert inside == (lo <= p["prediction"] <= hi)
            assert not p["qualified"] or inside
            assert p["why"].startswith("in band" if p["qualified"] else "not qualified")
    assert seen > 50


@pytest.mark.parametrize("final", [0, 1, 9, 10, 11, 999, 55_726, 10_000_000_000, 2**53 + 7])
def test_in_band_agrees_on_ints_arrays_and_sql(final: int) -> None:
    lo, hi = band(final)
    assert lo * 10 >= 9 * final > (lo - 1) * 10 and hi == final  # lo = ceil(0.9·F)
    preds = sorted({max(0, x) for x in (lo - 2, lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, 0)})
    expected = [lo <= q <= hi for q in preds]
    assert [in_band(q, final) for q in preds] == expected
    assert in_band(np.array(preds, dtype=np.int64), final).tolist() == expected
    engine = create_engine("sqlite://")
    with engine.connect() as conn:
        got = [bool(conn.execute(select(in_band(literal(q), literal(final)))).scalar())
               for q in preds]
    assert got == expected


def test_outcome_table_is_one_definition(tmp_path: Path) -> None:
    """The database's outcomes (staked report) and the lab's in-memory ones are the same
    table: a market nobody predicted is in neither, one whose commits never revealed is in
    both (with no forecasts)."""
    s = market_stream(posts=2, curators=3)
    s.post(100, "quiet", "nobody-predicted")
    s.payout(100 + PAYOUT_AT, "quiet", "nobody-predicted", 7_000)
    s.post(130, "shy", "never-revealed")
    s.commit(190, "curator1", "shy", "never-revealed", 5_000)
    s.payout(130 + PAYOUT_AT, "shy", "never-revealed", 5_000)
    blocks = s.blocks()
    store = new_store(f"sqlite:///{tmp_path / 'o.db'}")
    ingest(store, blocks)
    from_db = load_outcomes(store.engine)
    assert from_db == outcomes_of(run_memory(blocks))
    assert [(o.author, len(o.forecasts)) for o in from_db] == \
        [("author0", 3), ("author1", 3), ("shy", 0)]
    # the unrevealed commit rides along: staked rule sets burn its stake (issue 15)
    assert [(w.predictor, w.sp > 0) for w in from_db[2].unrevealed] == [("curator1", True)]
    assert all(not o.unrevealed for o in from_db[:2])
    assert len(build_report(store.engine)["markets"]) == 4  # the report still shows all


def test_stream_helper_posts_without_commits_settle() -> None:
    """Guards the test above: the quiet post really settles as a market."""
    s = Stream()
    s.post(0, "quiet", "p")
    s.payout(PAYOUT_AT, "quiet", "p", 7_000)
    state = run_memory(s.blocks())
    assert [m.final_payout for m in state.settled] == [7_000]
