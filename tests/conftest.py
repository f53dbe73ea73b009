"""Shared fixtures: bundled real data (never ../shared at run time) and fresh databases.

Database-backed tests take ``db_url`` (a factory of fresh database URLs) or ``sqlite_engine``
(kept under its old name: a fresh engine). Both are parametrised over the backends: SQLite
always, PostgreSQL when ``CURATION_TEST_PG_URL`` names a server (``.ci/pg-start.sh`` starts
one); each test then gets its own fresh PostgreSQL database, dropped afterwards. Without the
variable the PostgreSQL cases are skipped, and the skip reason says so.
"""

from __future__ import annotations

import gzip
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, create_engine, make_url, text

pytest_plugins = ["tests.browser"]  # the page tests' Chromium fixture

DATA = Path(__file__).parent / "data"
PG_URL = os.environ.get("CURATION_TEST_PG_URL", "")
NO_PG = ("CURATION_TEST_PG_URL is not set: PostgreSQL variants skipped "
         "(URL=$(.ci/pg-start.sh) starts a throwaway server)")
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql",
                 marks=[pytest.mark.skipif(not PG_URL, reason=NO_PG), pytest.mark.postgresql]),
]


# Test tiers, by module: ``pytest -m unit`` runs the pure core in seconds, ``-m "not slow"``
# skips what starts processes, servers and browsers. Plain ``pytest`` runs all of them. A
# module not named here counts as integration (a database or files, no long-lived processes).
UNIT = {"test_market", "test_spec_numbers", "test_properties", "test_seed_rules",
        "test_vesting", "test_staked", "test_layers", "test_forecast"}
SLOW = {"test_daemon", "test_page", "test_evaluate", "test_api_fuzz", "test_conformance",
        "test_client", "test_testnode", "test_page_dialog", "test_autoreveal",
        "test_devnode_live"}
SLOW |= {"test_history"}  # fetch from the dev node, Dask clusters
SLOW |= {"test_page_journey"}  # the whole journey in a browser on a live node


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgresql: runs against CURATION_TEST_PG_URL")
    config.addinivalue_line("markers", "unit: the pure core, no database, files or network")
    config.addinivalue_line("markers", "integration: a database, files or an in-process app")
    config.addinivalue_line("markers", "slow: real processes, servers, nodes or a browser")


SLOW.add("test_forks")  # the daemon against the test node and a faulty one (rw12)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        tier = "unit" if module in UNIT else "slow" if module in SLOW else "integration"
        item.add_marker(getattr(pytest.mark, tier))


# issue 15: the staked rule sets against their sources, and the bootstrap intervals
UNIT.update({"test_staked_fidelity", "test_bootstrap"})


@pytest.fixture(scope="session")
def steem_posts() -> list[dict]:
    from curation_market.lab.demo import bundled_posts

    return bundled_posts()


@pytest.fixture(scope="session")
def hive_raw_blocks() -> list[dict]:
    with gzip.open(DATA / "hive5m_raw_blocks.jsonl.gz", "rb") as fh:
        return [orjson.loads(line) for line in fh]


class PgDatabases:
    """Creates fresh databases on the test server and drops them at teardown."""

    def __init__(self, url: str):
        self.base = make_url(url)
        self.admin = create_engine(self.base, isolation_level="AUTOCOMMIT")
        self.made: list[str] = []

    def new(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.made.append(name)
        return self.base.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture()
def db_url(backend: str, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``db_url(name)`` → the URL of a fresh, empty database on this test's backend."""
    if backend == "sqlite":
        yield lambda name: f"sqlite:///{tmp_path / name}.db"
        return
    pg = PgDatabases(PG_URL)
    try:
        yield lambda _name: pg.new()
    finally:
        pg.drop_all()


@pytest.fixture()
def sqlite_engine(db_url: Callable[[str], str]) -> Iterator[Engine]:
    engine = create_engine(db_url("market"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The README demo's database (real block-17M posts + simulated curators), fully replayed,
    built once per session: every test that only reads the demo takes it from here. ``blocks``
    is its block file (for partial replays), ``report`` the report `demo` prints."""
    from rich.console import Console

    from curation_market.lab.demo import run_demo

    d = tmp_path_factory.mktemp("demo_db")
    url = f"sqlite:///{d / 'demo.db'}"
    report = run_demo(url, d / "blocks.jsonl", 17, Console(quiet=True))
    return {"url": url, "blocks": d / "blocks.jsonl", "report": report}
