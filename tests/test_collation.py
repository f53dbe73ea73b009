"""Ties by name come out in code-point order whatever the database's collation.

Before: PostgreSQL sorted tied curators in the database's default collation, so on an
``en_US.utf8`` cluster (``ab1 < abb < a-b-c``: punctuation ignored at first) the report and the
leaderboard differed from SQLite's (``a-b-c < ab-c < ab.d < ab1``), byte for byte.

Runs when ``CURATION_TEST_PG_URL`` names a server: one database with libc ``en_US.utf8``
(skipped, with the reason, where the operating system lacks that locale) and one with ICU
``en-US-u-ka-shifted``, which orders these names exactly like glibc's ``en_US.utf8`` and needs
no locale installed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from curation_market.api.app import create_app, make_engine
from curation_market.report.build import build_report, to_json
from tests.conftest import NO_PG, PG_URL
from tests.helpers import PAYOUT_AT, REVEAL_AT, Stream, ingest, new_store

# tied at 0 earned; code-point order differs from en_US's (which ignores '-' and '.')
TIED = ["abb", "ab1", "a-b-c", "ab.d", "abc", "ab-c"]
COLLATIONS = {
    "libc-en_US.utf8": "LOCALE 'en_US.utf8'",
    "icu-en-US-shifted": "LOCALE_PROVIDER icu ICU_LOCALE 'en-US-u-ka-shifted' LOCALE 'C'",
}

pytestmark = [pytest.mark.postgresql, pytest.mark.skipif(not PG_URL, reason=NO_PG)]


def stream() -> Stream:
    """One market: ``curator0`` (who has Steem Power) predicts inside the band, the tied
    names far outside it."""
    s = Stream()
    s.post(0, "author", "post")
    s.vote(6, "voter", "author", "post", 5000)
    final = 20_000
    for i, who in enumerate(["curator0", *TIED]):
        prediction = final if who == "curator0" else 1_000 + i
        s.commit(60 + 3 * i, who, "author", "post", prediction)
        s.reveal(REVEAL_AT + 3 * i, who, "author", "post", prediction)
    s.payout(PAYOUT_AT, "author", "post", final)
    return s


@pytest.fixture(params=sorted(COLLATIONS))
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"t_coll_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING '
                              f"'UTF8' {COLLATIONS[request.param]}"))
    except DBAPIError as exc:
        admin.dispose()
        pytest.skip(f"{request.param}: this server cannot create it ({exc.orig}); on Debian "
                    "`localedef -i en_US -f UTF-8 en_US.UTF-8` then restart PostgreSQL")
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_ties_sort_by_code_point_on_any_collation(pg_url: str, tmp_path) -> None:
    blocks = stream().blocks()
    lite = new_store(f"sqlite:///{tmp_path / 'lite.db'}")
    pg = new_store(pg_url)
    ingest(lite, blocks)
    ingest(pg, blocks)
    with pg.engine.connect() as conn:  # the cluster really orders these names otherwise
        native = conn.execute(text("SELECT n FROM unnest(CAST(:names AS text[])) AS n "
                                   "ORDER BY n"), {"names": TIED}).scalars().all()
    assert native != sorted(TIED)

    report = build_report(pg.engine)
    names = [c["curator"] for c in report["curators"]]
    assert names == ["curator0", *sorted(TIED)]
    assert to_json(report) == to_json(build_report(lite.engine))

    # the leaderboard: the same order, and the cursor pages through it the same way
    boards = []
    for url in (pg_url, str(lite.engine.url)):
        client = TestClient(create_app(make_engine(url)))
        items, cursor = [], None
        for _ in range(10):  # 7 curators, 2 a page: 4 pages
            body = client.get("/api/leaderboard", params={
                "limit": 2, **({"cursor": cursor} if cursor else {})}).json()
            items += [i["curator"] for i in body["items"]]
            cursor = body["next_cursor"]
            if not cursor:
                break
        boards.append(items)
    assert boards[0] == boards[1] == ["curator0", *sorted(TIED)]
