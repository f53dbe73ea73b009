"""Fuzz the API with its own OpenAPI schema (schemathesis, in-process ASGI transport, bounded
examples): valid and invalid parameters alike must never produce a 5xx, and every error body
must carry a message. The app is built at import (schemathesis needs it to collect the
operations) over a database file that a fixture fills with the demo database before any
request is made."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from curation_market.api.app import create_app, make_engine
from curation_market.lab.demo import demo_settings

DB = Path(tempfile.mkdtemp(prefix="curation-fuzz-")) / "demo.db"
app = create_app(make_engine(f"sqlite:///{DB}"), demo_settings().market_config())
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", autouse=True)
def _fill(demo_db) -> None:
    src = sqlite3.connect(demo_db["url"].removeprefix("sqlite:///"))
    dst = sqlite3.connect(DB)
    src.backup(dst)
    src.close()
    dst.close()


@schema.parametrize()
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case) -> None:
    response = case.call()
    assert response.status_code < 500, (case.path, case.query, response.text)
    if response.status_code == 200:
        assert "as_of_block" in response.json()
    if response.status_code >= 400:
        message = response.json()["error"]["message"]
        assert isinstance(message, str) and message
