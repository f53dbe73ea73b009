"""Shared fixtures: bundled real data (never ../shared at run time) and fresh databases."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, create_engine

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def steem_posts() -> list[dict]:
    from service.demo import bundled_posts

    return bundled_posts()


@pytest.fixture(scope="session")
def hive_raw_blocks() -> list[dict]:
    with gzip.open(DATA / "hive5m_raw_blocks.jsonl.gz", "rb") as fh:
        return [orjson.loads(line) for line in fh]


@pytest.fixture()
def sqlite_engine(tmp_path: Path) -> Engine:
    return create_engine(f"sqlite:///{tmp_path / 'market.db'}")
