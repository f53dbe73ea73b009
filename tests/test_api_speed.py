"""What makes the API fast at scale, checked for staying exact (issue 13).

* The aggregates the store keeps (``api_*``) equal the GROUP BY the read model ran per request
  before, after a replay resumed at arbitrary batch boundaries, with rows kept or not, on
  SQLite and PostgreSQL; the leaderboard read from them equals the old query over ranges
  whose ends fall inside days, on day boundaries, or leave no whole day.
* Keyset cursors: walking any list page by page gives exactly the full list.
* ``ETag``/``If-None-Match``: a 304 without a database statement while the head stands,
  a new tag when it moves; ``/api/status`` is never stored.
* Every read-model query the endpoints run uses an index on the tables that grow with the
  chain (SQLite ``EXPLAIN QUERY PLAN``; PostgreSQL plans are in docs/api.md).
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, select

from curation_market.api.app import create_app, make_engine
from curation_market.lab.demo import demo_settings
from indexer import readmodel as rm
from indexer import schema as t
from indexer.blockfile import read_blocks
from indexer.ingest import Ingester
from indexer.store import Store
from tests.conftest import BACKENDS

CFG = demo_settings().market_config()
DAY = rm.DAY


@pytest.fixture(scope="module")
def demo_blocks(demo_db) -> list[dict]:
    return list(read_blocks([demo_db["blocks"]]))


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("keep", [False, True], ids=["fresh-rows", "kept-rows"])
def test_aggregates_equal_the_group_by_after_resumed_replays(db_url, demo_blocks, demo_db,
                                                             keep: bool) -> None:
    url = db_url("resumed")
    last = demo_blocks[-1]["block_num"]
    first = demo_blocks[0]["block_num"]
    cuts = [first + (last - first) * k // 5 for k in (1, 2, 3, 4)] + [last]
    done = 0
    for i, cut in enumerate(cuts):  # a new Store and Ingester each time: a resume
        store = Store(create_engine(url), CFG.chain_id, CFG.rules.label)
        Ingester(store, CFG, batch_blocks=37 + 100 * i, keep_rows=keep).run(
            iter([b for b in demo_blocks if done < b["block_num"] <= cut]))
        done = cut
        with store.engine.connect() as conn:
            stored, again = rm.api_aggregates(conn), rm.api_aggregates_recomputed(conn)
        store.engine.dispose()
        assert stored == again, f"after block {cut}"
    assert len(stored["api_curator_totals"]) >= 10 and len(stored["api_curator_days"]) > 100
    full = create_engine(demo_db["url"])
    with full.connect() as conn:
        assert rm.api_aggregates(conn) == rm.api_aggregates_recomputed(conn)  # one run


def _windows(conn) -> list[tuple[int | None, int | None]]:
    st = t.settlements.c.time
    times = conn.execute(select(st).order_by(st)).scalars().all()
    lo, hi, mid = times[0], times[-1], times[len(times) // 2]  # days with settlements
    day = mid // DAY * DAY
    return [(None, None), (lo, None), (None, hi), (lo, hi), (mid, None), (None, mid),
            (day, day + DAY - 1),  # exactly one whole day
            (day + 1, day + DAY - 2),  # inside one day: no whole day
            (day + 3600, day + 3 * DAY + 7200),  # partial ends and whole days
            (day - 5, day + 5),  # two partial days, no whole one
            (day, day + 2 * DAY)]  # ends on the first second of a day


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_leaderboard_equals_the_group_by_over_ranges(db_url, demo_blocks) -> None:
    """Every range shape (bound-parameter statements built once per shape) equals the old
    GROUP BY, page by page, on SQLite and PostgreSQL; a second range of a shape already seen
    builds no statement."""
    url = db_url("ranges")
    store = Store(create_engine(url), CFG.chain_id, CFG.rules.label)
    Ingester(store, CFG, batch_blocks=5000, keep_rows=True).run(iter(demo_blocks))
    store.engine.dispose()
    with make_engine(url).connect() as conn:
        rm.leaderboard(conn, 0, 10 * DAY + 5)  # ("range", True, True, False, True)
        built = rm._board_statement.cache_info().misses
        rm.leaderboard(conn, 0, 20 * DAY + 7, (5, "x"))  # the same shape, paged
        rm.leaderboard(conn, 0, 30 * DAY + 9, (7, "y"))
        assert rm._board_statement.cache_info().misses == built + 1
        for lo, hi in _windows(conn):
            want = [rm.totals_doc(r) for r in rm.leaderboard_recomputed(conn, lo, hi, None,
                                                                         1000)]
            got = [rm.totals_doc(r) for r in rm.leaderboard(conn, lo, hi, limit=1000)]
            assert got == want, (lo, hi)
            walked: list[dict] = []
            after = None
            for _ in range(100):  # pages of 3 along the cursor
                page = [rm.totals_doc(r) for r in rm.leaderboard(conn, lo, hi, after, 3)]
                walked += page
                if len(page) < 3:
                    break
                after = (page[-1]["earned"], page[-1]["curator"])
            assert walked == got
        assert any(rm.leaderboard(conn, lo, hi) for lo, hi in _windows(conn)[6:])


@pytest.fixture(scope="module")
def client(demo_db) -> TestClient:
    return TestClient(create_app(make_engine(demo_db["url"]), CFG, head_ttl=0))


def _walk(client: TestClient, path: str, limit: int, **params) -> list[dict]:
    items, cursor = [], None
    for _ in range(500):
        body = client.get(path, params={**params, "limit": limit,
                                        **({"cursor": cursor} if cursor else {})}).json()
        items += body["items"] if "items" in body else body["history"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


@pytest.mark.parametrize(("path", "params"), [
    ("/api/markets", {}), ("/api/markets", {"phase": "settled"}),
    ("/api/markets", {"with_commits": 1}), ("/api/leaderboard", {}),
    ("/api/leaderboard", {"from": "2017-10-20T05:00:00", "to": "2017-11-01T07:00:00"}),
    ("/api/curators/sim-oracle", {})])
def test_keyset_cursor_walks_give_the_full_list(client: TestClient, path: str,
                                                params: dict) -> None:
    full = _walk(client, path, 200, **params)
    assert len(full) >= 5
    for limit in (1, 3, 7):
        assert _walk(client, path, limit, **params) == full


@pytest.mark.parametrize("cursor", [
    "WyJsZWFkZXJib2FyZCIsIjEiLCJ4Il0",  # ["leaderboard","1","x"]: earned not an integer
    "WyJoaXN0b3J5IiwxLDIsM10",  # a history cursor one field short
    "WyJtYXJrZXRzIiwxXQ"])  # a markets cursor
def test_forged_cursors_are_rejected(client: TestClient, cursor: str) -> None:
    for path in ("/api/leaderboard", "/api/curators/sim-oracle"):
        r = client.get(path, params={"cursor": cursor})
        assert r.status_code == 400 and r.json()["error"]["parameter"] == "cursor"


def test_etag_gives_304_without_a_query_until_the_head_moves(demo_db, demo_blocks,
                                                               tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'growing.db'}"
    half = demo_blocks[len(demo_blocks) // 2]["block_num"]
    store = Store(create_engine(url), CFG.chain_id, CFG.rules.label)
    Ingester(store, CFG).run(iter([b for b in demo_blocks if b["block_num"] <= half]))
    engine = make_engine(url)
    statements = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    client = TestClient(create_app(engine, CFG, head_ttl=0))
    first = client.get("/api/leaderboard", params={"limit": 5})
    tag = first.headers["etag"]
    assert first.status_code == 200 and first.headers["cache-control"] == "no-cache"
    assert re.fullmatch(rf'"{first.json()["as_of_block"]}-[0-9a-f]{{16}}"', tag)
    assert client.get("/api/leaderboard", params={"limit": 6}).headers["etag"] != tag
    n = len(statements)
    again = client.get("/api/leaderboard", params={"limit": 5},
                       headers={"If-None-Match": f'"x", W/{tag}'})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    kept = client.get("/api/leaderboard", params={"limit": 5})
    assert kept.content == first.content and kept.headers["etag"] == tag
    assert len(statements) == n  # neither touched the API's connections
    status = client.get("/api/status")
    assert status.headers["cache-control"] == "no-store" and "etag" not in status.headers
    missing = client.get("/api/markets/nobody/nothing")
    assert missing.status_code == 404 and "etag" not in missing.headers

    Ingester(store, CFG).run(iter([b for b in demo_blocks if b["block_num"] > half]))
    moved = client.get("/api/leaderboard", params={"limit": 5}, headers={"If-None-Match": tag})
    assert moved.status_code == 200 and moved.headers["etag"] != tag
    assert moved.json()["as_of_block"] == demo_blocks[-1]["block_num"]
    assert moved.json()["as_of_block"] > first.json()["as_of_block"]


GROWING = ("commits", "settlements", "rejections", "posts", "author_history",
           "api_curator_days", "api_curator_totals", "api_market_counts", "votes")


def test_every_endpoint_query_uses_an_index(demo_db, client: TestClient) -> None:
    """The statements the endpoints send, explained: no full scan of a table that grows with
    the chain, and no temporary B-tree for an ORDER BY on one, but where the scan is the
    ordered walk a LIMIT stops early (the markets list by post id)."""
    engine = client.app.state.ctx.engine
    sent: list[tuple[str, object]] = []

    def keep(_conn, _cursor, statement, params, *_rest) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, params))

    event.listen(engine, "before_cursor_execute", keep)
    one = rm.leaderboard(engine.connect(), limit=1)[0]["predictor"]
    fresh = TestClient(create_app(engine, CFG, cache_entries=0))
    hist = fresh.get(f"/api/curators/{one}").json()["history"][0]
    for path in ("/api/markets?limit=20", "/api/markets?phase=settled&limit=20",
                 "/api/markets?author=" + hist["author"], "/api/markets?tag=steemit",
                 f"/api/markets/{hist['author']}/{hist['permlink']}",
                 "/api/leaderboard", "/api/leaderboard?from=2017-10-20T05:00:00&to="
                 "2017-11-01T07:00:00", f"/api/authors/{hist['author']}"):
        assert fresh.get(path).status_code == 200, path
    event.remove(engine, "before_cursor_execute", keep)
    bad = []
    with engine.connect() as conn:
        for statement, params in sent:
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
            for row in plan:
                detail = row[-1]
                m = re.match(r"SCAN (\w+)(?: AS \w+)?(?: USING (?:COVERING )?INDEX (\w+))?$",
                             detail)
                walk = m is not None and (  # an ordered walk that the LIMIT ends
                    (m.group(1) == "posts" and "ORDER BY posts.id DESC" in statement)
                    or m.group(2) == "ix_api_curator_totals_rank")
                if m and m.group(1) in GROWING and not walk:
                    bad.append((detail, statement[:300]))
    assert not bad, bad
    assert len(sent) >= 15


def test_the_response_cache_stays_within_its_bounds(monkeypatch) -> None:
    """Entries and bytes: the oldest answers go first; an answer over MAX_BODY is served
    but not kept."""
    import asyncio

    from curation_market.api import cache

    async def app(scope, _receive, send) -> None:
        size = 2000 if scope["path"] == "/api/big" else 10
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body",
                    "body": b'{"as_of_block":5,"x":"' + b"a" * size + b'"}'})

    monkeypatch.setattr(cache, "MAX_BODY", 1000)
    monkeypatch.setattr(cache, "MAX_BYTES", 110)  # three answers of 34 bytes
    rc = cache.ResponseCache(app, None, entries=3, head_ttl=1e9)  # type: ignore[arg-type]
    rc._head, rc._read_at = 5, float("inf")

    async def get(path: str, query: str = "") -> bytes:
        out: list[dict] = []

        async def send(message: dict) -> None:
            out.append(message)
        await rc({"type": "http", "path": path, "method": "GET", "headers": [],
                  "query_string": query.encode()}, None, send)
        return out[-1]["body"]

    for i in range(5):
        asyncio.run(get("/api/x", str(i)))
    assert [k for k in rc.kept] == [(5, "/api/x?2"), (5, "/api/x?3"), (5, "/api/x?4")]
    assert len(asyncio.run(get("/api/big"))) > 2000 and (5, "/api/big") not in rc.kept
    assert rc.kept_bytes == sum(len(v[2]) for v in rc.kept.values()) <= 110
    asyncio.run(get("/api/x", "4"))
    assert rc.hits == 1 and rc.misses == 6


def test_a_request_takes_two_thread_hand_offs_and_returns_its_connection(
        demo_db, monkeypatch) -> None:
    """The profile's largest stage of a market detail was the worker-thread hand-off (four
    per request: the connection dependency's enter and exit, ``context``, the endpoint). Now
    two: the endpoint (which checks the connection out) and the connection's return. The
    answers are the bytes the read model gives on a plain connection, and every connection
    is back in the pool after each request, a 404 included."""
    import anyio.to_thread

    from curation_market.api.common import encode_cursor, respond, windows

    engine = make_engine(demo_db["url"])
    app = create_app(engine, CFG, cache_entries=0, head_ttl=0)
    client = TestClient(app)
    hops = []
    real = anyio.to_thread.run_sync

    async def counting(func, *args, **kwargs):
        hops.append(getattr(func, "__name__", repr(func)))
        return await real(func, *args, **kwargs)

    with engine.connect() as conn:
        a, p = conn.execute(select(t.posts.c.author, t.posts.c.permlink)
                            .join(t.commits, t.commits.c.post_id == t.posts.c.id)
                            .where(t.posts.c.paid_block.is_not(None))
                            .order_by(t.posts.c.id.desc()).limit(1)).one()
        h = rm.head(conn)
        row = rm.market(conn, a, p)
        commits = rm.commits_of(conn, [row["id"]])[row["id"]]
        market = respond(h, market=rm.market_doc(row, commits, h.time,
                                                 windows(app.state.ctx, conn))).body
        rows = rm.leaderboard(conn, None, None, None, 51)
        items = [rm.totals_doc(r) for r in rows[:50]]
        nxt = encode_cursor("leaderboard", [items[-1]["earned"], items[-1]["curator"]]) \
            if len(rows) > 50 else None
        board = respond(h, items=items, next_cursor=nxt, range={"from": None, "to": None}).body
    assert len(commits) >= 3
    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    for path, want in ((f"/api/markets/{a}/{p}", market), ("/api/leaderboard", board),
                       ("/api/markets/nobody/nothing", None)):
        hops.clear()
        r = client.get(path)
        assert len(hops) == 2, (path, hops)
        assert engine.pool.checkedout() == 0
        assert r.status_code == (404 if want is None else 200)
        assert want is None or r.content == want
