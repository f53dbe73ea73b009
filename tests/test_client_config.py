"""What the page is told to hash and sign with (``/api/client-config``), and the window ends it
counts down to (``reveal_from`` in a market's document), over the demo database.

The browser side (the commitment, signing, broadcasting) is tests/test_page_dialog.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from curation_market.api.app import create_app, make_engine
from curation_market.api.client import ClientSettings
from curation_market.cli.serve import page_settings
from curation_market.config import ConfigError, Settings, load_settings
from curation_market.lab.demo import demo_settings
from indexer import schema as t

CFG = demo_settings().market_config()


def epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp())


def test_client_config_is_the_databases_chain_and_the_served_config(demo_db) -> None:
    engine = make_engine(demo_db["url"])
    with engine.connect() as conn:
        stored = conn.execute(select(t.meta.c.chain_id)).scalar_one()
    assert stored  # the demo database is bound to its chain
    page = ClientSettings(chain="steem", node_url="http://127.0.0.1:9/", staked="numerai-2018")
    client = TestClient(create_app(engine, CFG, client_settings=page))
    doc = client.get("/api/client-config").json()
    assert doc["chain_id"] == stored and doc["address_prefix"] == "STM"
    assert (doc["custom_json_id"], doc["window_seconds"], doc["reveal_period_seconds"]) == \
        (CFG.market_id, CFG.window, CFG.reveal_period)
    assert (doc["node_url"], doc["staked"], doc["currency"]) == \
        ("http://127.0.0.1:9/", "numerai-2018", "SBD")
    assert doc["max_prediction"] == CFG.limits.max_prediction and doc["as_of_block"] > 0
    # without page settings: no node (the page then signs only through Keychain), not staked
    bare = TestClient(create_app(engine, CFG)).get("/api/client-config").json()
    assert (bare["node_url"], bare["staked"]) == (None, None)
    assert "/api/client-config" in client.get("/openapi.json").json()["paths"]


def test_reveal_from_is_the_first_second_a_reveal_counts(demo_db) -> None:
    client = TestClient(create_app(make_engine(demo_db["url"]), CFG))
    items = client.get("/api/markets?limit=20").json()["items"]
    assert items
    for m in items:
        created = epoch(m["created"])
        assert epoch(m["commit_until"]) == created + CFG.window  # commits: age <= window
        assert epoch(m["reveal_from"]) == created + CFG.window + 1  # reveals: age > window
        assert epoch(m["reveal_until"]) == created + CFG.window + CFG.reveal_period
        assert CFG.windows.reveal_open(epoch(m["reveal_from"]) - created)
        assert not CFG.windows.reveal_open(epoch(m["commit_until"]) - created)


def test_serve_settings_reach_the_page(tmp_path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[serve]\nnode_url = "https://api.hive.blog"\n[rules]\nname = "mmc"\n'
                    '[chain]\nname = "hive"\n')
    settings = load_settings(path)
    assert page_settings(settings) == ClientSettings("hive", "https://api.hive.blog", "mmc")
    # the option wins over the file
    assert page_settings(settings, "http://127.0.0.1:8091").node_url == "http://127.0.0.1:8091"
    assert page_settings(Settings()) == ClientSettings("steem", None, None)
    path.write_text('[serve]\nnode_url = "ftp://x"\n')
    with pytest.raises(ConfigError, match="serve.node_url"):
        load_settings(path)
