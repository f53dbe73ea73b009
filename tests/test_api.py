"""The HTTP API's behaviour over the demo database: pagination, sealed predictions, errors,
``as_of_block``, statement timeouts and the number of SQL statements per request.

Requests go through FastAPI's in-process ASGI client (the real app, real SQLite); the page
test (tests/test_page.py) drives a real uvicorn server.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.exc import DBAPIError

from curation_market.api.app import _is_timeout, create_app, make_engine
from curation_market.lab.demo import demo_settings
from indexer import schema as t
from indexer.blockfile import read_blocks
from indexer.ingest import Ingester
from indexer.store import Store

CFG = demo_settings().market_config()


class Counter:
    def __init__(self, engine) -> None:
        self.n = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_args) -> None:
        self.n += 1


@pytest.fixture(scope="module")
def engine(demo_db):
    return make_engine(demo_db["url"])


@pytest.fixture(scope="module")
def client(engine) -> TestClient:
    return TestClient(create_app(engine, CFG))


@pytest.fixture(scope="module")
def revealing(demo_db, tmp_path_factory) -> tuple[TestClient, dict]:
    """A replay stopped just after the first reveal of the busiest market: it is revealing,
    some predictions are revealed on chain, and the API must still not show them."""
    full = create_engine(demo_db["url"])
    c = t.commits.c
    with full.connect() as conn:
        post_id, first_reveal = conn.execute(
            select(c.post_id, c.reveal_block).where(c.reveal_block.is_not(None))
            .order_by(c.reveal_block)).first()
        post = conn.execute(select(t.posts).where(t.posts.c.id == post_id)).mappings().one()
    url = f"sqlite:///{tmp_path_factory.mktemp('partial') / 'p.db'}"
    store = Store(create_engine(url), CFG.chain_id, CFG.rules.label)
    blocks = [b for b in read_blocks([demo_db["blocks"]])
              if int(b.get("block_num", 0) or 0) <= first_reveal]
    Ingester(store, CFG).run(iter(blocks))
    return TestClient(create_app(make_engine(url), CFG)), dict(post)


def test_every_response_says_its_block(client: TestClient, demo_db) -> None:
    with create_engine(demo_db["url"]).connect() as conn:
        head = conn.execute(select(t.meta.c.last_block)).scalar_one()
    one = client.get("/api/curators/sim-oracle", params={"limit": 1}).json()["history"][0]
    for path in ("/api/status", "/api/markets", "/api/leaderboard",
                 "/api/curators/sim-oracle", f"/api/markets/{one['author']}/{one['permlink']}",
                 f"/api/authors/{one['author']}"):
        body = client.get(path).json()
        assert body["as_of_block"] == head, path


def test_markets_pagination_round_trip(client: TestClient, demo_db) -> None:
    with create_engine(demo_db["url"]).connect() as conn:
        ids = conn.execute(select(t.posts.c.id).where(t.posts.c.is_market)
                           .order_by(t.posts.c.id.desc())).scalars().all()
    assert len(ids) > 200
    seen, cursor = [], None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/markets", params=params).json()
        seen += [m["id"] for m in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ids  # nothing skipped, nothing repeated, newest first


def test_markets_filters(client: TestClient) -> None:
    every = client.get("/api/markets", params={"limit": 200}).json()["items"]
    busy = client.get("/api/markets", params={"limit": 200, "with_commits": "true"}).json()
    assert busy["items"] and all(m["n_commits"] > 0 for m in busy["items"])
    assert {m["id"] for m in every if m["n_commits"]} <= {m["id"] for m in busy["items"]}
    ned = client.get("/api/markets", params={"author": "ned", "with_commits": 1}).json()["items"]
    assert ned and all(m["author"] == "ned" and m["n_commits"] for m in ned)
    top = next(m for m in every if m["category"])
    tagged = client.get("/api/markets", params={"tag": top["category"]}).json()["items"]
    assert top["id"] in [m["id"] for m in tagged]
    assert all(m["category"] == top["category"] for m in tagged)
    since = client.get("/api/markets", params={"from": top["created"], "limit": 200}).json()
    assert since["items"] and all(m["created"] >= top["created"] for m in since["items"])


def test_leaderboard_pagination_and_range(client: TestClient) -> None:
    whole = client.get("/api/leaderboard", params={"limit": 200}).json()["items"]
    pages, cursor = [], None
    while True:
        body = client.get("/api/leaderboard",
                          params={"limit": 4, **({"cursor": cursor} if cursor else {})}).json()
        pages += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == whole
    assert [r["earned"] for r in whole] == sorted((r["earned"] for r in whole), reverse=True)
    early = client.get("/api/leaderboard", params={"to": "2017-10-20T00:00:00"}).json()["items"]
    assert sum(r["predictions"] for r in early) < sum(r["predictions"] for r in whole)
    empty = client.get("/api/leaderboard", params={"from": "2030-01-01"}).json()
    assert empty["items"] == [] and empty["next_cursor"] is None


def test_market_detail_explains_every_reward(client: TestClient) -> None:
    top = client.get("/api/curators/sim-oracle", params={"limit": 1}).json()["history"][0]
    m = client.get(f"/api/markets/{top['author']}/{top['permlink']}").json()["market"]
    assert m["phase"] == "settled" and not m["sealed"]
    s = m["settlement"]
    assert s["band"] == [-(-9 * s["final_payout"] // 10), s["final_payout"]]
    rewards = [p["reward"] for p in m["predictions"]]
    assert sum(rewards) + s["returned"] == s["pool"]
    for p in m["predictions"]:
        assert p["why"]
        if p["reward"]:
            assert p["qualified"] and s["band"][0] <= p["prediction"] <= s["band"][1]


def test_predictions_stay_sealed_until_the_reveal_period_ends(revealing) -> None:
    client, post = revealing
    body = client.get(f"/api/markets/{post['author']}/{post['permlink']}").json()
    m = body["market"]
    assert m["phase"] == "revealing" and m["sealed"]
    assert m["n_revealed"] >= 1 and m["n_commits"] >= m["n_revealed"]
    assert len(m["predictions"]) == m["n_commits"]
    for p in m["predictions"]:
        assert len(p["commitment"]) == 64
        assert not {"prediction", "stake", "bid", "reward", "revealed"} & set(p)
    listed = client.get("/api/markets", params={"phase": "revealing"}).json()["items"]
    assert post["id"] in [x["id"] for x in listed]
    assert all(x["phase"] == "revealing" for x in listed)
    assert all(x["phase"] == "open" for x in
               client.get("/api/markets", params={"phase": "open"}).json()["items"])


@pytest.mark.parametrize(("path", "status", "words"), [
    ("/api/markets?limit=0", 422, "limit"),
    ("/api/markets?limit=abc", 422, "limit"),
    ("/api/markets?phase=soon", 422, "phase"),
    ("/api/markets?from=yesterday", 422, "from"),
    ("/api/markets?author=Not%20A%20Name", 422, "author"),
    ("/api/markets?cursor=bm9wZQ", 400, "cursor"),
    ("/api/markets?from=2020-01-02&to=2020-01-01", 400, "after"),
    ("/api/leaderboard?cursor=WyJtYXJrZXRzIiwxXQ", 400, "cursor"),  # a markets cursor
    ("/api/markets/nobody/nothing", 404, "no market"),
    ("/api/curators/nobody", 404, "no curator"),
    ("/api/authors/nobody", 404, "no author"),
    ("/api/nowhere", 404, "Not Found"),
    # times the answer could not echo back (a year outside 1970..9999 once gave a 500)
    ("/api/leaderboard?from=0001-01-01T00:00:00%2B14:00", 400, "out of range"),
    ("/api/leaderboard?to=9999-12-31T23:59:59-14:00", 400, "out of range"),
    ("/api/markets?from=1969-12-31T23:59:59Z", 400, "out of range"),
])
def test_bad_input_gets_a_4xx_with_a_message(client: TestClient, path: str, status: int,
                                              words: str) -> None:
    r = client.get(path)
    assert r.status_code == status
    err = r.json()["error"]
    assert err["status"] == status and words in err["message"]


def test_no_n_plus_one(engine) -> None:
    client = TestClient(create_app(engine, CFG, cache_entries=0))  # every request runs
    assert client.get("/api/markets?limit=1").status_code == 200  # the windows, read once
    counter = Counter(engine)
    per_request = {}
    for path in ("/api/markets?limit=5", "/api/markets?limit=200", "/api/leaderboard?limit=2",
                 "/api/leaderboard?limit=200", "/api/curators/sim-oracle?limit=1",
                 "/api/curators/sim-oracle?limit=200"):
        before = counter.n
        assert client.get(path).status_code == 200
        per_request[path] = counter.n - before
    assert per_request["/api/markets?limit=5"] == per_request["/api/markets?limit=200"] == 2
    assert per_request["/api/leaderboard?limit=2"] == per_request["/api/leaderboard?limit=200"]
    assert per_request["/api/curators/sim-oracle?limit=200"] <= 5
    one = client.get("/api/curators/sim-oracle", params={"limit": 1}).json()["history"][0]
    before = counter.n
    m = client.get(f"/api/markets/{one['author']}/{one['permlink']}").json()["market"]
    assert counter.n - before == 3 and m["n_commits"] > 3


def test_statement_timeout_cuts_a_long_query(demo_db) -> None:
    slow = make_engine(demo_db["url"], statement_timeout=0.05)
    forever = text("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                   "WHERE i < 1000000000) SELECT count(*) FROM n")
    with slow.connect() as conn, pytest.raises(DBAPIError) as info:
        conn.execute(forever)
    assert _is_timeout(info.value)
    with slow.connect() as conn:  # the connection is usable again: the deadline re-arms
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_the_api_cannot_write(engine) -> None:
    with engine.connect() as conn, pytest.raises(DBAPIError):
        conn.execute(text("DELETE FROM posts"))


def test_schema_and_page_are_served(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/api/markets", "/api/markets/{author}/{permlink}", "/api/curators/{name}",
            "/api/authors/{name}", "/api/leaderboard", "/api/status"} <= set(schema["paths"])
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_serve_names_the_port_it_got(demo_db) -> None:
    """``serve --port 0`` (a real process) prints the port the kernel chose, and serves there."""
    import re
    import subprocess
    import sys
    import time

    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "curation_market", "serve", "--db",
                             demo_db["url"], "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found and found.group(1) != "0", line
        base, deadline = f"http://127.0.0.1:{found.group(1)}", time.monotonic() + 20
        while True:
            try:
                body = httpx.get(base + "/api/status", timeout=2).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.1)
        assert body["as_of_block"] > 0
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def pg_client(demo_db, tmp_path_factory):
    """The same demo replayed into a fresh database on the PostgreSQL test server."""
    from rich.console import Console

    from curation_market.lab.demo import run_demo
    from tests.conftest import NO_PG, PG_URL, PgDatabases

    if not PG_URL:
        pytest.skip(NO_PG)
    pg = PgDatabases(PG_URL)
    url = pg.new()
    run_demo(url, tmp_path_factory.mktemp("pgdemo") / "blocks.jsonl", 17, Console(quiet=True))
    engine = make_engine(url, statement_timeout=0.2)
    yield TestClient(create_app(engine, CFG)), engine
    engine.dispose()
    pg.drop_all()


@pytest.mark.postgresql
def test_postgresql_gives_the_same_answers(client: TestClient, pg_client) -> None:
    """Every endpoint, a second page of each paginated one, and errors: byte-equal JSON on
    PostgreSQL and SQLite (lag aside), so the dialects agree on order, cursors and filters."""
    pg, engine = pg_client
    one = client.get("/api/curators/sim-oracle", params={"limit": 1}).json()["history"][0]
    paths = ["/api/status", "/api/markets?limit=5&with_commits=true",
             "/api/markets?phase=closed&limit=3", "/api/markets?tag=steemit&from=2017-09-01",
             f"/api/markets/{one['author']}/{one['permlink']}", f"/api/authors/{one['author']}",
             "/api/curators/sim-copycat?limit=3", "/api/leaderboard?limit=4",
             "/api/leaderboard?from=2017-10-15", "/api/markets?cursor=bm9wZQ",
             "/api/markets/nobody/nothing"]
    for path in paths:
        a, b = client.get(path), pg.get(path)
        assert a.status_code == b.status_code, path
        ja, jb = a.json(), b.json()
        ja.pop("lag_seconds", None), jb.pop("lag_seconds", None)
        assert ja == jb, path
        if ja.get("next_cursor"):
            sep = "&" if "?" in path else "?"
            nxt = f"{path}{sep}cursor={ja['next_cursor']}"
            assert client.get(nxt).json() == pg.get(nxt).json(), nxt
    with engine.connect() as conn, pytest.raises(DBAPIError) as info:
        conn.execute(text("SELECT pg_sleep(5)"))
    assert _is_timeout(info.value)
    with engine.connect() as conn, pytest.raises(DBAPIError):
        conn.execute(text("DELETE FROM posts"))


def test_serve_refuses_a_missing_sqlite_file(tmp_path) -> None:
    from typer.testing import CliRunner

    from curation_market.cli.main import app

    missing = tmp_path / "typo.db"
    r = CliRunner().invoke(app, ["serve", "--db", f"sqlite:///{missing}", "--port", "0"])
    assert r.exit_code == 2 and "no database file at" in r.output
    assert not missing.exists()


def test_curator_rp_is_the_one_settlement_applies_next(client) -> None:
    """Was: the API showed (hits/n)³, the page a reputation that never paid anyone. Now: the
    curator's RP is what a next hit is weighted with, and it equals the rp settlement recorded
    on that curator's next prediction in the band."""
    d = client.get("/api/curators/sim-oracle", params={"limit": 200}).json()
    assert d["rp"] == pytest.approx(((d["r"] + 1) / (d["n"] + 1)) ** 3)
    newest_hit = next(h for h in d["history"] if h["qualified"])
    assert newest_hit["rp"] == pytest.approx((newest_hit["r"] / newest_hit["n"]) ** 3)
