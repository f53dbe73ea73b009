"""Rewinding the database to an earlier block (issue 12, item 7a): the undo log of the last
``[ingest] reversible_blocks`` blocks (indexer.store, "reversible blocks") and
``curation-market rewind --to BLOCK``.

The reference for every comparison is an honest incremental run of the same blocks: its
whole database (tests/dbdump.py) after each block. A rewind to block b must give that
database back exactly, undo log included, and ingesting again from there must end where a
run that never went past b ends.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from curation.market import MarketConfig
from curation_market.cli.main import app
from indexer import schema as t
from indexer.ingest import Ingester
from indexer.store import UNDO_EXEMPT, RewindRefused, Store
from tests.dbdump import dump
from tests.helpers import CHAIN_ID, PAYOUT_AT, REVEAL_AT, Stream, market_stream, new_store


def snap(engine) -> dict:  # type: ignore[no-untyped-def]
    """The whole database, undo log included but for its write counter (``seq``: PostgreSQL's
    sequence never reuses a number, SQLite's row ids do)."""
    out = dump(engine, undo=True)
    out["undo_log"] = sorted(row[1:] for row in out["undo_log"])
    # the settings a database is built with are recorded once, at its first write, and stay
    # through rewinds (tests/test_db_settings.py): not state of a block
    del out["market_settings"]
    return out


K = 10**9  # every block of the stream inside the window (it spans 200,000 block numbers)


def full_stream() -> list[dict]:
    """Every kind of write a block can cause: posts, votes, commits, reveals, payouts and
    settlements (author history, curators), rejections, delegations and their returns."""
    s = market_stream(posts=3, curators=3, stream=Stream())
    s.reveal(REVEAL_AT + 3, "stranger", "author0", "post-0", 5)  # no commitment: rejected
    s.tx(40, ["delegate_vesting_shares", {"delegator": "curator1", "delegatee": "curator2",
                                          "vesting_shares": "1000.000000 VESTS"}])
    s.tx(PAYOUT_AT // 2, ["delegate_vesting_shares", {
        "delegator": "curator1", "delegatee": "curator2", "vesting_shares": "0.000000 VESTS"}])
    s.vop(PAYOUT_AT // 2 + 5 * 86400, ["return_vesting_delegation", {
        "account": "curator1", "vesting_shares": "1000.000000 VESTS"}])
    return s.blocks()


BLOCKS = full_stream()
NUMS = [int(b["block_id"][:8], 16) for b in BLOCKS]


def incremental(db: str = "sqlite://", k: int = K) -> tuple[Store, dict[int, dict]]:
    """An honest run, one block at a time, and its database after each block."""
    store = new_store(db)
    store.claim_chain(CHAIN_ID)  # a rewind keeps the database bound to its chain
    dumps = {0: snap(store.engine)}
    for n in range(1, len(BLOCKS) + 1):
        Ingester(store, MarketConfig(), batch_blocks=5, reversible_blocks=k).run(BLOCKS[:n])
        dumps[NUMS[n - 1]] = snap(store.engine)
    return store, dumps


@pytest.fixture(scope="module")
def honest() -> tuple[Store, dict[int, dict]]:
    return incremental()


def test_the_stream_writes_every_table_a_rewind_restores(honest) -> None:
    """Forgetting a table is impossible: every table of indexer/schema.py is either declared
    exempt (indexer.store.UNDO_EXEMPT) or written by this stream, and then the tests below
    show that a rewind restores it. A new table that the stream does not fill fails here:
    extend full_stream() so it is written, or declare it exempt with the reason."""
    _, dumps = honest
    final = dumps[NUMS[-1]]
    written = {name for d in dumps.values() for name, rows in d.items() if rows}
    restored = set(t.metadata.tables) - UNDO_EXEMPT - {"account_snapshots"}  # next test
    assert set(t.metadata.tables) >= UNDO_EXEMPT
    assert restored - written == set(), "tables this stream never writes"
    assert final["delegation_returns"] == [] and final["settlements"]
    assert any(d["delegation_returns"] for d in dumps.values())  # a pending return came and went


def test_node_snapshots_read_for_a_block_are_part_of_it() -> None:
    """The daemon's account snapshots (read from the node before a batch, the one table the
    stream cannot write) belong to the block they were read for: a rewind to the block
    before puts accounts, delegations and account_snapshots back; a rewind to the block
    after keeps them."""
    from curation.state import Account
    from indexer.history import Reconstruction

    store = new_store()
    store.claim_chain(CHAIN_ID)
    ingester = Ingester(store, MarketConfig(), batch_blocks=5, reversible_blocks=K)
    ingester.run(BLOCKS[:10])
    before = snap(store.engine)
    rec = Reconstruction(Account("curator1", 123_456, as_of_block=NUMS[9]),
                         {("curator1", "newcomer"): 77}, True, ["read"], 0)
    store.write_account_snapshots({"curator1": rec}, NUMS[9] + 5, NUMS[10], "test")
    read = snap(store.engine)
    assert read["account_snapshots"] and read != before
    ingester.run(BLOCKS[:11])  # the block the snapshot was read for
    after = snap(store.engine)
    store.rewind(NUMS[10])
    assert snap(store.engine) == after
    store.rewind(NUMS[9])
    assert snap(store.engine) == before


def test_rewind_to_every_block_gives_each_earlier_database_back(honest, db_url) -> None:
    store, dumps = honest
    db = db_url("full")
    copy, _ = incremental(db)
    deadline = time.monotonic() + 60
    for num in reversed([0, *NUMS]):  # all the way back, one block at a time
        assert time.monotonic() < deadline
        copy.rewind(num)
        assert snap(copy.engine) == dumps[num], f"rewind to {num}"
        copy.rewind(num)  # idempotent
        assert snap(copy.engine) == dumps[num]
    Ingester(copy, MarketConfig(), batch_blocks=5, reversible_blocks=K).run(BLOCKS)
    assert snap(copy.engine) == dumps[NUMS[-1]]


def test_random_rewinds_and_reingests_are_idempotent(honest) -> None:
    """A table of random walks: rewind to a random block of the window, ingest up to a
    random later one, again and again; the database is always the honest run's at that
    block."""
    _, dumps = honest
    rng = random.Random(12)
    store = new_store()
    deadline = time.monotonic() + 60
    at = 0
    for _ in range(25):
        assert time.monotonic() < deadline
        target = rng.randrange(len(BLOCKS) + 1)
        if target <= NUMS.index(at) + 1 if at else target == 0:
            store.rewind(NUMS[target - 1] if target else 0)
        else:
            Ingester(store, MarketConfig(), batch_blocks=rng.randrange(1, 9),
                     reversible_blocks=K).run(BLOCKS[:target])
        at = store.new_state().meta.last_block
        assert snap(store.engine) == dumps[at]


def test_refused_outside_the_window_changes_nothing() -> None:
    store = new_store()
    Ingester(store, MarketConfig(), batch_blocks=4, reversible_blocks=3).run(BLOCKS)
    w = store.undo_window()
    assert w.checkpoint == NUMS[-1]
    # the last 3 blocks by number: their bases are restorable, the horizon is the oldest
    assert w.horizon == max(n for n in NUMS if n <= NUMS[-1] - 3)
    before = snap(store.engine)
    with pytest.raises(RewindRefused, match=f"older than the undo horizon, block {w.horizon:,}"):
        store.rewind(w.horizon - 1)
    with pytest.raises(RewindRefused, match="newer than the checkpoint"):
        store.rewind(w.checkpoint + 1)
    gap = NUMS[-1] - 1  # the stream has no block there: written with the last one
    assert gap not in NUMS
    with pytest.raises(RewindRefused, match=f"rewind to block {NUMS[-2]:,} or {NUMS[-1]:,}"):
        store.rewind(gap)
    assert snap(store.engine) == before
    store.rewind(w.checkpoint)  # nothing to do
    assert snap(store.engine) == before


def test_without_a_window_nothing_is_logged_and_nothing_rewinds() -> None:
    store = new_store()
    Ingester(store, MarketConfig(), batch_blocks=4, reversible_blocks=0).run(BLOCKS)
    d = snap(store.engine)
    assert d["undo_log"] == [] and d["undo_blocks"] == []
    with pytest.raises(RewindRefused, match="undo horizon"):
        store.rewind(NUMS[-2])


def test_a_rewind_that_fails_midway_changes_nothing(db_url, monkeypatch) -> None:
    """One transaction: an error after half the rows were put back rolls all of it back."""
    import indexer.store as store_module

    db = db_url("crash")
    store, dumps = incremental(db)
    before = snap(store.engine)
    real, calls = store_module._restore, []

    def failing(conn, table, key, image) -> None:  # type: ignore[no-untyped-def]
        calls.append(table.name)
        if len(calls) == 20:
            raise OSError("disk gone")
        real(conn, table, key, image)

    monkeypatch.setattr(store_module, "_restore", failing)
    with pytest.raises(OSError, match="disk gone"):
        store.rewind(NUMS[2])
    assert len(calls) == 20
    assert snap(create_engine(db)) == before
    monkeypatch.setattr(store_module, "_restore", real)
    store.rewind(NUMS[2])
    assert snap(store.engine) == dumps[NUMS[2]]


def test_rewind_command(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    store, dumps = incremental(db)
    cfg = tmp_path / "config.toml"
    cfg.write_text('[chain]\nchain_id = "' + "0" * 64 + '"\n')
    runner = CliRunner()
    target = NUMS[-4]
    res = runner.invoke(app, ["rewind", "--to", str(target), "--db", db, "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert f"rewound from block {NUMS[-1]:,} to block {target:,}" in res.output
    assert snap(store.engine) == dumps[target]
    again = runner.invoke(app, ["rewind", "--to", str(target), "--db", db, "--config", str(cfg)])
    assert again.exit_code == 0 and "already at block" in again.output
    assert snap(store.engine) == dumps[target]
    late = runner.invoke(app, ["rewind", "--to", str(NUMS[-1]), "--db", db,
                               "--config", str(cfg)])
    assert late.exit_code == 2 and "newer than the checkpoint" in late.output
    assert len([ln for ln in late.output.splitlines() if ln.strip()]) == 1
    store.write_node_status({"url": "http://n", "head": 1, "irreversible": 1, "head_time": 1,
                             "ops_per_second": 0.0, "blocks_per_second": 0.0,
                             "checked_at": int(time.time()), "metrics_port": 0,
                             "provisional": "{}"})
    running = runner.invoke(app, ["rewind", "--to", str(NUMS[-5]), "--db", db,
                                  "--config", str(cfg)])
    assert running.exit_code == 2 and "the daemon looks running" in running.output
    assert snap(store.engine)["posts"] == dumps[target]["posts"]
    forced = runner.invoke(app, ["rewind", "--to", str(NUMS[-5]), "--db", db,
                                 "--config", str(cfg), "--force"])
    assert forced.exit_code == 0, forced.output
    target = NUMS[-5]
    assert {k: v for k, v in snap(store.engine).items() if k != "node_status"} == \
        {k: v for k, v in dumps[target].items() if k != "node_status"}
    with store.engine.begin() as conn:  # the window shrinks: older blocks are refused
        conn.execute(t.undo_blocks.delete().where(t.undo_blocks.c.num <= NUMS[-6]))
        horizon = conn.execute(select(t.undo_blocks.c.base).order_by(t.undo_blocks.c.num)
                               ).scalars().first()
    old = runner.invoke(app, ["rewind", "--to", str(NUMS[0]), "--db", db, "--config", str(cfg),
                              "--force"])
    assert old.exit_code == 2 and f"undo horizon, block {horizon:,}" in old.output
    assert snap(store.engine)["posts"] == dumps[target]["posts"]


@pytest.mark.parametrize("k", [0, 1, 2, 5, 40])
@pytest.mark.parametrize("batch", [1, 3, 7])
def test_the_window_changes_no_market_table(k: int, batch: int) -> None:
    """Holding blocks back and writing the last ones one by one changes nothing but the undo
    log, whatever the window and the batch size, bad lines and a stop included; a rerun after
    a stop reads the held blocks again."""
    from indexer.blockfile import BadLine

    source = [*BLOCKS[:5], BadLine("f", 6, "not json"), *BLOCKS[5:], BadLine("f", 99, "cut")]
    reference = new_store()
    Ingester(reference, MarketConfig(), batch_blocks=4).run(source)
    store = new_store()
    stops = iter([False, True])
    Ingester(store, MarketConfig(), batch_blocks=batch, reversible_blocks=k).run(
        source, stop=lambda: next(stops, False))
    if k + 2 * batch < len(BLOCKS):  # two batches were written before the source ended
        assert store.new_state().meta.last_block < NUMS[-1]  # stopped mid-way
    Ingester(store, MarketConfig(), batch_blocks=batch, reversible_blocks=k).run(source)
    assert dump(store.engine) == dump(reference.engine)
    horizon = store.undo_window().horizon  # the window counts block numbers (gaps here)
    if k == 0:
        assert horizon == NUMS[-1]
    else:
        lowest = NUMS[-1 - k] if k < len(NUMS) else 0
        assert lowest <= horizon < NUMS[-1] and horizon in [0, *NUMS]


def test_rewind_judges_no_config(tmp_path: Path) -> None:
    """A rewind restores state and judges nothing: a config naming other rules or other
    windows does not stop it (the demo database, built with replies included, was refused
    by the config-less command), and a missing database is never created."""
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    store, dumps = incremental(db)
    cfg = tmp_path / "other.toml"
    cfg.write_text('[market]\nwindow_seconds = 3600\ninclude_replies = true\n'
                   '[rules]\nname = "commit-reveal"\n')
    runner = CliRunner()
    res = runner.invoke(app, ["rewind", "--to", str(NUMS[-3]), "--db", db, "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert snap(store.engine) == dumps[NUMS[-3]]
    missing = tmp_path / "missing.db"
    res = runner.invoke(app, ["rewind", "--to", "5", "--db", f"sqlite:///{missing}"])
    assert res.exit_code == 2 and "no database file" in res.output and not missing.exists()
