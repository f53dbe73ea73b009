"""``/api/forecasts``, ``/api/forecasts/quality`` and ``/api/curators/{name}/markets`` over the
demo database and over partial replays of it (markets caught mid-reveal).

Every figure is checked against an independent computation straight from the tables (numpy
for the median, scipy for Spearman), and nothing of a sealed market (open or revealing) may
reach the feed: changing the sealed markets' predictions and SP to anything at all must not
change a byte of the feed or of the quality figures.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr
from sqlalchemy import create_engine, select, update

from curation.payload import format_milli
from curation_market.api.app import create_app, make_engine
from curation_market.lab.demo import demo_settings
from indexer import schema as t
from indexer.blockfile import read_blocks
from indexer.ingest import Ingester
from indexer.store import Store

CFG = demo_settings().market_config()
W = CFG.windows


@pytest.fixture(scope="module")
def client(demo_db) -> TestClient:
    return TestClient(create_app(make_engine(demo_db["url"]), CFG))


def independent_median(pairs: list[tuple[int, int]]) -> int:
    """The rule of rewards/forecast.py written again with numpy's cumulative sums."""
    v = np.array([p for p, _ in pairs], dtype=object)
    w = np.array([s for _, s in pairs], dtype=object)
    if w.sum() == 0:
        w = np.ones(len(pairs), dtype=object)
    order = np.argsort(np.array([p for p, _ in pairs]), kind="stable")
    v, w = v[order], w[order]
    uniq = sorted(set(v.tolist()))
    cum = np.cumsum([sum(w[v == u]) for u in uniq])
    total = cum[-1]
    i = int(np.argmax(2 * cum >= total))
    if 2 * cum[i] == total and i + 1 < len(uniq):
        return (uniq[i] + uniq[i + 1]) // 2
    return uniq[i]


def db_forecasts(url: str, head_time: int) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(author, permlink) → (forecast, predictions, sp) of every unsealed market, from the
    tables directly."""
    p, c = t.posts.c, t.commits.c
    out: dict[tuple[str, str], list[tuple[int, int]]] = {}
    with create_engine(url).connect() as conn:
        rows = conn.execute(select(p.author, p.permlink, p.created, p.paid_block, p.deleted,
                                   c.prediction, c.sp)
                            .join(t.commits, t.commits.c.post_id == p.id)
                            .where(c.prediction.is_not(None), p.is_market)).all()
    for r in rows:
        unsealed = r.paid_block is not None or (
            not r.deleted and head_time - r.created > W.window + W.reveal_period)
        if unsealed:
            out.setdefault((r.author, r.permlink), []).append((r.prediction, r.sp))
    return {k: (independent_median(v), len(v), sum(s for _, s in v)) for k, v in out.items()}


def all_pages(client: TestClient, deadline: float = 60.0, **params) -> list[dict]:
    items: list[dict] = []
    cursor = None
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        q = dict(params, **({"cursor": cursor} if cursor else {}))
        body = client.get("/api/forecasts", params=q).json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


def test_feed_pages_in_forecast_order_and_matches_the_tables(client, demo_db) -> None:
    whole = client.get("/api/forecasts", params={"limit": 200}).json()
    assert whole["next_cursor"] is None and whole["currency"] == "SBD"
    paged = all_pages(client, limit=4)
    assert [(i["author"], i["permlink"]) for i in paged] == \
        [(i["author"], i["permlink"]) for i in whole["items"]]
    keys = [(i["forecast_milli"], i["created_block"]) for i in paged]
    assert keys == sorted(keys, reverse=True)
    expected = db_forecasts(demo_db["url"], client.get("/api/status").json()["as_of_time"]
                            and _head_time(demo_db["url"]))
    assert len(paged) == len(expected) >= 15
    for item in paged:
        value, n, sp = expected[(item["author"], item["permlink"])]
        assert (item["forecast_milli"], item["predictions"], item["sp"]) == (value, n, sp)
        assert item["forecast"] == f"{format_milli(value)} SBD"
        assert item["phase"] == "settled" and item["final_payout"] is not None


def _head_time(url: str) -> int:
    with create_engine(url).connect() as conn:
        return conn.execute(select(t.meta.c.last_time)).scalar_one()


def test_feed_filters(client) -> None:
    everything = client.get("/api/forecasts", params={"limit": 200}).json()["items"]
    tag = everything[0]["tag"]
    tagged = client.get("/api/forecasts", params={"tag": tag, "limit": 200}).json()["items"]
    assert tagged and all(i["tag"] == tag for i in tagged)
    assert len(tagged) == sum(1 for i in everything if i["tag"] == tag)
    author = everything[1]["author"]
    mine = all_pages(client, author=author, limit=1)
    assert mine == [i for i in everything if i["author"] == author]
    assert client.get("/api/forecasts", params={"phase": "closed"}).json()["items"] == []
    assert len(client.get("/api/forecasts", params={"phase": "settled", "limit": 200})
               .json()["items"]) == len(everything)
    for bad, status in (({"phase": "open"}, 422), ({"phase": "revealing"}, 422),
                        ({"limit": 0}, 422), ({"cursor": "bm9wZQ"}, 400),
                        ({"cursor": "WyJtYXJrZXRzIiwxXQ"}, 400), ({"tag": "No Tag"}, 422)):
        res = client.get("/api/forecasts", params=bad)
        assert res.status_code == status, (bad, res.text)
        assert res.json()["error"]["message"]


def test_quality_on_the_demo_matches_an_independent_computation(client, demo_db) -> None:
    s, c = t.settlements.c, t.commits.c
    with create_engine(demo_db["url"]).connect() as conn:
        settled = conn.execute(select(s.post_id, s.block, s.final_payout)
                               .order_by(s.block.desc(), s.post_id.desc())).all()
        preds = conn.execute(select(c.post_id, c.prediction, c.sp)
                             .where(c.prediction.is_not(None))).all()
    by_post: dict[int, list[tuple[int, int]]] = {}
    for r in preds:
        by_post.setdefault(r.post_id, []).append((r.prediction, r.sp))
    for n in (5, 10, 50):
        picked = [r for r in settled if r.post_id in by_post][:n]
        f = np.array([independent_median(by_post[r.post_id]) for r in picked])
        final = np.array([r.final_payout for r in picked])
        body = client.get("/api/forecasts/quality", params={"n": n}).json()
        assert body["markets"] == len(picked) == min(n, 17)
        assert body["spearman"] == pytest.approx(float(spearmanr(f, final).statistic))
        assert body["median_abs_error"] == int(np.floor(np.median(np.abs(f - final))))
        assert body["median_rel_error"] == pytest.approx(
            float(np.median(np.abs(f - final) / final)))
        assert body["within_band"] == int(np.sum((10 * f >= 9 * final) & (f <= final)))
        assert (body["settled_to_block"], body["settled_from_block"]) == \
            (picked[0].block, picked[-1].block)
    assert client.get("/api/forecasts/quality", params={"n": 0}).status_code == 422


# --- partial replays: markets caught open and revealing -----------------------------------

@pytest.fixture(scope="module")
def partials(demo_db, tmp_path_factory) -> list[tuple[str, int]]:
    """Replays of the demo cut at three reveal blocks (early, middle, late): at each some
    markets are revealing with reveals on chain, older ones closed or settled."""
    c = t.commits.c
    with create_engine(demo_db["url"]).connect() as conn:
        reveals = [r for (r,) in conn.execute(select(c.reveal_block)
                                              .where(c.reveal_block.is_not(None))
                                              .order_by(c.reveal_block))]
    blocks = list(read_blocks([demo_db["blocks"]]))
    out = []
    for k in (len(reveals) // 10, len(reveals) // 2, len(reveals) - 3):
        cut = reveals[k]
        url = f"sqlite:///{tmp_path_factory.mktemp('cut') / 'p.db'}"
        store = Store(create_engine(url), CFG.chain_id, CFG.rules.label)
        Ingester(store, CFG).run(iter([b for b in blocks
                                      if int(b.get("block_num", 0) or 0) <= cut]))
        out.append((url, cut))
    return out


def sealed_ids(url: str) -> set[int]:
    p = t.posts.c
    now = _head_time(url)
    with create_engine(url).connect() as conn:
        rows = conn.execute(select(p.id, p.created).where(p.paid_block.is_(None))).all()
    return {r.id for r in rows if now - r.created <= W.window + W.reveal_period}


def snapshot(client: TestClient) -> tuple:
    return (client.get("/api/forecasts", params={"limit": 200}).json(),
            client.get("/api/forecasts/quality", params={"n": 200}).json())


def test_nothing_sealed_ever_reaches_the_feed(partials, tmp_path: Path) -> None:
    some_sealed_revealed = False
    for url, _cut in partials:
        client = TestClient(create_app(make_engine(url), CFG))
        sealed = sealed_ids(url)
        with create_engine(url).connect() as conn:
            c = t.commits.c
            revealed_sealed = conn.execute(select(c.post_id).where(
                c.post_id.in_(sealed), c.prediction.is_not(None))).all()
            names = {r.author for r in conn.execute(select(t.posts.c.author).where(
                t.posts.c.id.in_(sealed)))}
        some_sealed_revealed |= bool(revealed_sealed)
        feed, _ = snapshot(client)
        listed = {(i["author"], i["permlink"]) for i in feed["items"]}
        assert all(i["phase"] in ("closed", "settled") for i in feed["items"])
        assert listed == set(db_forecasts(url, _head_time(url)))
        for name in names:  # an author with a sealed market: the filter shows none of it
            for item in client.get("/api/forecasts", params={"author": name}).json()["items"]:
                assert item["phase"] in ("closed", "settled")
    assert some_sealed_revealed  # the cuts do catch revealed predictions of sealed markets


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 10**12)),
                       min_size=1, max_size=50))
def test_sealed_predictions_cannot_move_the_feed(partials, tmp_path_factory, values) -> None:
    """Whatever the sealed markets' revealed predictions and SP are, the feed and the
    quality figures are the same bytes."""
    url, _ = partials[1]
    copy = tmp_path_factory.mktemp("mut") / "m.db"
    shutil.copy(url.removeprefix("sqlite:///"), copy)
    murl = f"sqlite:///{copy}"
    before = snapshot(TestClient(create_app(make_engine(url), CFG)))
    sealed = sorted(sealed_ids(murl))
    c = t.commits.c
    engine = create_engine(murl)
    with engine.begin() as conn:
        rows = conn.execute(select(c.post_id, c.predictor).where(c.post_id.in_(sealed))
                            .order_by(c.post_id, c.predictor)).all()
        assert rows
        for i, r in enumerate(rows):
            pred, sp = values[i % len(values)]
            conn.execute(update(t.commits).where(c.post_id == r.post_id,
                                                 c.predictor == r.predictor)
                         .values(prediction=pred, sp=sp))
    engine.dispose()
    after = snapshot(TestClient(create_app(make_engine(murl), CFG)))
    assert after == before


def test_curator_view_open_and_settled(partials, client) -> None:
    url, _ = partials[1]
    partial = TestClient(create_app(make_engine(url), CFG))
    c = t.commits.c
    with create_engine(url).connect() as conn:
        name = conn.execute(select(c.predictor).where(c.status == "open")).scalars().first()
        mine = conn.execute(select(c.post_id, c.reveal_block).where(
            c.predictor == name, c.status == "open")).all()
    body = partial.get(f"/api/curators/{name}/markets").json()
    assert len(body["open"]) == len(mine) >= 1
    now = _head_time(url)
    for o in body["open"]:
        assert not {"prediction", "salt", "stake", "bid", "reward"} & set(o)
        assert o["phase"] in ("open", "revealing", "closed")
        assert o["reveal_until"] > o["reveal_from"] > o["committed_at"] >= o["created"]
        assert o["must_reveal"] == (not o["revealed"] and o["phase"] != "closed")
        if o["must_reveal"]:
            assert o["seconds_left"] > 0
    assert body["to_reveal"] == sum(o["must_reveal"] for o in body["open"])
    assert now  # the head the phases were judged at
    # settled results on the full demo carry every factor, equal to the market's own
    full = client.get("/api/curators/sim-oracle/markets", params={"limit": 3}).json()
    assert full["open"] == [] and len(full["settled"]) == 3 and full["next_cursor"]
    for res in full["settled"]:
        market = client.get(f"/api/markets/{res['author']}/{res['permlink']}").json()["market"]
        [pred] = [p for p in market["predictions"] if p["predictor"] == "sim-oracle"]
        assert {k: res[k] for k in pred} == pred
        assert res["band"] == market["settlement"]["band"]
        assert res["curation_fraction"] == market["settlement"]["curation_fraction"]
    rest, cursor, stop = [], full["next_cursor"], time.monotonic() + 30
    while cursor and time.monotonic() < stop:
        page = client.get("/api/curators/sim-oracle/markets",
                          params={"limit": 3, "cursor": cursor}).json()
        rest += page["settled"]
        cursor = page["next_cursor"]
    assert cursor is None
    totals = client.get("/api/curators/sim-oracle").json()
    assert len(full["settled"]) + len(rest) == totals["predictions"]
    assert sum(r["reward"] for r in full["settled"] + rest) == totals["earned"]
    assert client.get("/api/curators/nobody/markets").status_code == 404
    assert client.get("/api/curators/sim-oracle/markets",
                      params={"cursor": "WyJoaXN0b3J5IiwxLDAsMCwwXQ"}).status_code == 400
