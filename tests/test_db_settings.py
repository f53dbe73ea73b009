"""One database, one market: the database records every ``[market]`` setting that changes
results (and the ``[rules]`` keys its rules label leaves out), refuses a writer configured
otherwise, and its readers take the windows from it.

Before (issue 12, item 2): a replay resumed with ``window_seconds = 3600`` was accepted
silently, and ``serve`` without the indexer's ``--config`` judged phases with the default
windows — it showed the predictions of a market whose reveal window, under the windows the
database was built with, was still open. ``report`` showed no windows at all.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, delete, select
from typer.testing import CliRunner

from curation.chaintime import chain_time
from curation.market import MarketConfig
from curation_market.api.app import create_app, make_engine
from curation_market.cli.main import app
from curation_market.report.build import build_report
from indexer import schema as t
from indexer.readmodel import iso
from indexer.store import Store, check_settings, stored_settings
from tests.helpers import (
    ANCHOR,
    CHAIN_ID,
    PAYOUT_AT,
    REVEAL_AT,
    T0,
    WINDOW,
    Stream,
    ingest,
    market_stream,
    new_store,
)

runner = CliRunner()
LONG_REVEAL = 3 * 86400  # a non-default reveal period: 3 days instead of 6 hours
CFG = MarketConfig(reveal_period=LONG_REVEAL)


def _write_blocks(path: Path, blocks: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(b) + b"\n" for b in blocks))
    return path


def _config(path: Path, market: str) -> Path:
    path.write_text(f"[market]\n{market}\n")
    return path


def _dump(url: str) -> dict:
    engine = create_engine(url)
    with engine.connect() as conn:
        out = {tb.name: sorted(map(tuple, conn.execute(select(tb)).all()))
               for tb in t.metadata.sorted_tables}
    engine.dispose()
    return out


def test_a_resumed_replay_with_another_window_is_refused(tmp_path: Path) -> None:
    """The second half of the chain under ``window_seconds = 3600`` would have taken commits
    the first half's rules refuse; now the writer stops (exit 2) with one line naming the
    key, the database's value and the configured one, and writes nothing."""
    blocks = market_stream(posts=4).blocks()
    half = len(blocks) // 2
    first = _write_blocks(tmp_path / "first.jsonl", blocks[:half])
    rest = _write_blocks(tmp_path / "rest.jsonl", blocks[half:])
    db = f"sqlite:///{tmp_path / 'm.db'}"
    res = runner.invoke(app, ["replay", str(first), "--db", db])
    assert res.exit_code == 0, res.output
    before = _dump(db)
    assert dict(before["market_settings"])["market.window_seconds"] == "1800"

    other = _config(tmp_path / "other.toml", "window_seconds = 3600")
    res = runner.invoke(app, ["replay", str(rest), "--db", db, "--config", str(other)])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert "market.window_seconds = 1800" in lines[0] and "asks for 3600" in lines[0]
    assert _dump(db) == before  # refused before anything was written

    same = _config(tmp_path / "same.toml", "window_seconds = 1800")
    res = runner.invoke(app, ["replay", str(rest), "--db", db, "--config", str(same)])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(("key", "value"), [
    ("market.custom_json_id", "other_market"), ("market.reveal_period_seconds", 3600),
    ("market.include_replies", True), ("market.max_prediction", "5.000"),
    ("market.max_open_commits", 3), ("market.max_payload_bytes", 1024),
    ("market.max_ops_per_payload", 2), ("rules.underdog_floor", 2.5),
    ("rules.author_window_days", 7)])
def test_every_market_setting_is_held_to(db_url, key: str, value: object) -> None:
    """Each key that changes results is recorded and compared: a Store opened with another
    value refuses, and so does an ingester of a store that did not check. (The rules keys
    move the author average stored with every settlement, underdog rule on or off.)"""
    from curation_market.config import Settings

    url = db_url("s")
    ingest(new_store(url), market_stream(posts=1).blocks())
    base = Settings()
    section, name = key.split(".")
    other = Settings.model_validate({section: {name: value}}).market_config()
    assert other.settings()[key] != base.market_config().settings()[key]
    assert other.rules.label == base.market_config().rules.label  # the label misses them
    with pytest.raises(ValueError, match=f"built with {key} = "):
        Store(create_engine(url), CHAIN_ID, other.rules.label, other.settings())
    with pytest.raises(ValueError, match=f"built with {key} = "):
        ingest(new_store(url), market_stream(posts=2).blocks(), cfg=other)


def _open_market_stream() -> Stream:
    """A post committed and revealed, then chain time moved on to 30,000 s after it: past the
    default reveal period (1,800 + 21,600 s), inside the database's (1,800 + 259,200 s)."""
    s = Stream()
    s.post(0, "alice", "open-post")
    s.commit(60, "curator0", "alice", "open-post", 12_345)
    s.reveal(REVEAL_AT, "curator0", "alice", "open-post", 12_345)
    s.post(30_000, "bob", "later-post")
    return s


def test_serve_without_config_keeps_sealed_what_the_database_windows_seal(db_url) -> None:
    url = db_url("w")
    store = new_store(url, CFG)
    ingest(store, _open_market_stream().blocks(), cfg=CFG)
    # what `serve` builds without --config: the default MarketConfig
    client = TestClient(create_app(make_engine(url), MarketConfig()))
    doc = client.get("/api/markets/alice/open-post").json()["market"]
    created = ANCHOR.time_of(ANCHOR.block_at(T0))  # the post's block's time
    assert doc["phase"] == "revealing" and doc["sealed"] is True
    assert doc["reveal_until"] == iso(created + WINDOW + LONG_REVEAL)
    assert [set(p) & {"prediction", "revealed", "stake"} for p in doc["predictions"]] == [set()]
    listed = client.get("/api/markets", params={"phase": "revealing"}).json()["items"]
    assert [m["permlink"] for m in listed] == ["open-post"]
    status = client.get("/api/status").json()
    assert (status["window_seconds"], status["reveal_period_seconds"]) == (WINDOW, LONG_REVEAL)


def test_report_shows_the_database_windows(db_url) -> None:
    url = db_url("r")
    store = new_store(url, CFG)
    ingest(store, market_stream(posts=2).blocks(), cfg=CFG)
    report = build_report(store.engine)
    assert len(report["markets"]) == 2
    for m in report["markets"]:
        c = chain_time(m["created"])
        assert m["commit_until"] == iso(c + WINDOW)
        assert m["reveal_until"] == iso(c + WINDOW + LONG_REVEAL)
    assert PAYOUT_AT > WINDOW + LONG_REVEAL  # settled: the phase itself needs no windows


def test_an_older_database_adopts_the_first_writer_once(db_url, caplog) -> None:
    """A database indexed before it recorded settings (migration 0006 leaves the table
    empty) adopts the config of its first writer, says so once in the log, and from then on
    holds it like any other."""
    url = db_url("o")
    blocks = market_stream(posts=3).blocks()
    half = len(blocks) // 2
    ingest(new_store(url), blocks[:half])
    engine = create_engine(url)
    with engine.begin() as conn:  # what migration 0006 leaves in an older database
        conn.execute(delete(t.market_settings))
    with caplog.at_level(logging.WARNING, logger="curation.store"):
        ingest(new_store(url, CFG), blocks[half:], cfg=CFG)
        ingest(new_store(url, CFG), blocks[half:], cfg=CFG)  # a rerun: nothing new to say
    adopted = [r for r in caplog.records if "recorded no setting" in r.getMessage()]
    assert len(adopted) == 1
    assert "market.reveal_period_seconds = 259200" in adopted[0].getMessage()
    with engine.connect() as conn:
        assert stored_settings(conn) == CFG.settings()
    with pytest.raises(ValueError, match="reveal_period_seconds = 259200"):
        Store(engine, CHAIN_ID, CFG.rules.label, MarketConfig().settings())


def test_serve_refuses_a_database_with_blocks_but_no_windows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    ingest(new_store(url), market_stream(posts=1).blocks())
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(delete(t.market_settings))
    engine.dispose()
    res = runner.invoke(app, ["serve", "--db", url, "--port", "0"])
    assert res.exit_code == 2
    assert "records no market windows" in res.output


def test_check_settings_names_key_and_both_values() -> None:
    stored = MarketConfig().settings()
    wanted = replace(MarketConfig(), window=3600).settings()
    with pytest.raises(ValueError) as exc:
        check_settings(stored, wanted)
    assert str(exc.value).startswith(
        "database was built with market.window_seconds = 1800; this run asks for 3600")
    check_settings({}, wanted)  # nothing recorded yet: adopted, not compared


def test_bids_are_integer_thousandths_from_payload_to_database(db_url) -> None:
    """A revealed "0.600" is 600 in the message, the commit, the database and the API; the
    staked rule sets weigh with 0.6. Migration 0006 turns an older database's float 0.6 into
    600 (and back on downgrade)."""
    from alembic import command

    from curation_market.curator.ops import commit_payload, custom_json_op, reveal_payload
    from indexer.migrations import alembic_config
    from indexer.readmodel import outcomes
    from tests.helpers import MARKET_ID, salt_of

    s = Stream()
    s.post(0, "bob", "p")
    salt = salt_of("curator0", "p")
    s.tx(60, custom_json_op(MARKET_ID, "curator0", commit_payload(
        CHAIN_ID, "bob", "p", "curator0", 12_000, salt, 10_000, 600)))
    s.tx(REVEAL_AT, custom_json_op(MARKET_ID, "curator0", reveal_payload(
        "bob", "p", 12_000, salt, 10_000, 600)))
    s.payout(PAYOUT_AT, "bob", "p", 12_000)
    url = db_url("b")
    store = new_store(url)
    ingest(store, s.blocks())
    engine = store.engine

    def bids() -> list:
        with engine.connect() as conn:
            return list(conn.execute(select(t.commits.c.bid)).scalars())

    assert bids() == [600] and type(bids()[0]) is int
    with engine.connect() as conn:
        assert outcomes(conn)[0].forecasts[0].bid == 0.6
    doc = TestClient(create_app(make_engine(url))).get("/api/markets/bob/p").json()["market"]
    assert doc["predictions"][0]["bid"] == 600
    engine.dispose()
    with engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), "0005")
    assert bids() == [0.6]
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), "head")
    assert bids() == [600] and type(bids()[0]) is int
    with engine.connect() as conn:  # 0006 also filled the settled commit's hit from the band
        assert conn.execute(select(t.commits.c.hit)).scalar_one() is True


def test_a_settled_commit_is_stored_and_read_back_as_settlement_made_it(db_url) -> None:
    """Settlement's per-commit record (rewards.settle.CommitResult) goes to the database as it
    is and comes back equal, field for field, to the one the engine kept in memory."""
    from indexer.store import _commit  # the row reader prefetch uses
    from tests.helpers import run_memory

    blocks = market_stream(posts=3).blocks()
    memory = run_memory(blocks)
    store = new_store(db_url("c"))
    ingest(store, blocks)
    with store.engine.connect() as conn:
        rows = conn.execute(select(t.commits)).all()
    stored = {(r.post_id, r.predictor): _commit(r) for r in rows}
    kept = {k: c for k, c in memory.commits.items() if c is not None}
    assert len(stored) == len(kept) == 12
    for key, c in kept.items():
        assert c.result is not None and stored[key].result == c.result
        assert stored[key] == c
