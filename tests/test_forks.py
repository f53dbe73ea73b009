"""The daemon and a faulty node (issue 12, item 7a): a wrong block id stored from a faulty
node is found and rewound (curation_market.daemon.forks) instead of wedging the database.

The node is the real test node (curation_market.devnode) on loopback; ``misreport(n)`` makes
it serve block n under a wrong id, as a faulty node would. The reference is a daemon that
only ever followed the honest node, to the same block: the databases must be identical,
undo log included (only what the node said about itself is left out, as in
tests/test_daemon.py, and the undo log's write counter).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, update

from curation_market.config import load_settings
from curation_market.daemon.context import Context
from curation_market.daemon.jobs import follow
from curation_market.daemon.run import guard, started
from curation_market.devnode.node import TestNode
from indexer import schema as t
from indexer.chain import ChainMismatch
from tests.dbdump import dump

DATA = Path(__file__).parent / "data"
BLOCKS = DATA / "hive5m_raw_blocks.jsonl.gz"
OPS = DATA / "hive5m_ops.jsonl.gz"
NODE_TABLES = {"node_status", "account_snapshots", "vesting_prices"}

CONFIG = """
[ingest]
batch_blocks = 100
reversible_blocks = {k}
[node]
batch_size = 50
poll_seconds = 0.05
retries = 3
backoff_seconds = 0.05
health_seconds = 0.5
sweep_seconds = 0.5
"""


def settings(tmp_path: Path, k: int = 100):  # type: ignore[no-untyped-def]
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(k=k))
    return load_settings(path)


def state(db: str) -> dict:
    """Everything but the node's tables; the undo log without its write counter (``seq``:
    SQLite reuses row ids after the log is pruned, so two histories number alike rows
    apart)."""
    out = {k: v for k, v in dump(create_engine(db), undo=True).items() if k not in NODE_TABLES}
    out["undo_log"] = sorted(row[1:] for row in out["undo_log"])
    return out


def drive(ctx: Context, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ctx.stopping.is_set():
        assert time.monotonic() < deadline, f"stuck at block {ctx.ingester.checkpoint}"
        follow(ctx)


def follow_honestly(node: TestNode, db: str, tmp_path: Path, until: int) -> None:
    with started(Context.create(settings(tmp_path), [node.url], create_engine(db),
                                until=until)) as ctx:
        drive(ctx)
    assert ctx.ingester.checkpoint == until


def stored_id(db: str) -> str:
    with create_engine(db).connect() as conn:
        return conn.execute(select(t.meta.c.last_block_id)).scalar_one()


def test_a_wrong_id_from_a_faulty_node_is_rewound_at_the_next_start(tmp_path: Path) -> None:
    """The issue's case: the last block of a committed batch came with a wrong id. Every
    start against the faulty node still stops (nothing to rewind to: it agrees with itself);
    the first start against an honest node rewinds one block and ends identical to an
    uninterrupted honest run."""
    db = f"sqlite:///{tmp_path / 'daemon.db'}"
    ref = f"sqlite:///{tmp_path / 'honest.db'}"
    cfg = settings(tmp_path)
    with TestNode.from_files([BLOCKS], ops=[OPS], head=1_100, lag=20) as node:
        engine = create_engine(db)
        wrong = node.misreport(500)
        with started(Context.create(cfg, [node.url], engine, until=500)) as ctx:
            drive(ctx)
        assert ctx.ingester.checkpoint == 500 and stored_id(db) == wrong
        with started(Context.create(cfg, [node.url], engine, until=900)) as ctx:
            job = guard(ctx, follow)
            deadline = time.monotonic() + 60
            while not ctx.stopping.is_set():
                assert time.monotonic() < deadline, "the mismatch was never met"
                job()
        assert isinstance(ctx.error, ChainMismatch) and ctx.ingester.checkpoint == 500
        assert "rewind --to BLOCK" in str(ctx.error)
        node.misreport(500, False)  # an honest node from now on
        with started(Context.create(cfg, [node.url], engine, until=900)) as ctx:
            assert ctx.fork_rewinds == 1  # at start, before anything was fetched
            drive(ctx)
        assert ctx.ingester.checkpoint == 900 and ctx.error is None
        follow_honestly(node, ref, tmp_path, 900)
    assert state(db) == state(ref)


def test_a_node_that_heals_while_the_daemon_runs_is_followed_after_a_rewind(
        tmp_path: Path) -> None:
    """Following live, the faulty node's block 500 is the LIB and is written; the next
    block fails the ``previous`` check (the follow run raises, as before). Once the node's id
    of block 500 changes, the next follow run rewinds to where they agree and restarts the
    fetcher from there."""
    db = f"sqlite:///{tmp_path / 'daemon.db'}"
    ref = f"sqlite:///{tmp_path / 'honest.db'}"
    with TestNode.from_files([BLOCKS], ops=[OPS], head=520, lag=20) as node:
        node.misreport(500)  # the LIB: the end of a follow run
        with started(Context.create(settings(tmp_path), [node.url], create_engine(db),
                                    until=800)) as ctx:
            deadline = time.monotonic() + 60
            while ctx.ingester.checkpoint < 500:
                assert time.monotonic() < deadline, f"stuck at {ctx.ingester.checkpoint}"
                follow(ctx)
            assert ctx.ingester.checkpoint == 500
            node.advance(30)
            with pytest.raises(ChainMismatch, match="block 501 names previous"):
                while True:
                    assert time.monotonic() < deadline, "the mismatch was never met"
                    follow(ctx)
            assert ctx.ingester.checkpoint == 500
            node.misreport(500, False)
            node.advance(300)
            drive(ctx)
        assert ctx.fork_rewinds == 1 and ctx.ingester.checkpoint == 800
        assert ctx.metrics.rewinds._value.get() == 1
        follow_honestly(node, ref, tmp_path, 800)
    assert state(db) == state(ref)


def test_a_fork_deeper_than_the_window_stops_with_the_mismatch(tmp_path: Path) -> None:
    """No stored block of the window agrees with the node: nothing is rewound, the start
    stops with a message that names the horizon and the rewind command."""
    db = f"sqlite:///{tmp_path / 'daemon.db'}"
    cfg = settings(tmp_path, k=5)
    with TestNode.from_files([BLOCKS], ops=[OPS], head=1_100, lag=20) as node:
        engine = create_engine(db)
        with started(Context.create(cfg, [node.url], engine, until=300)) as ctx:
            drive(ctx)
        with engine.begin() as conn:  # every stored id of the window is another chain's
            conn.execute(update(t.undo_blocks).values(block_id="ab" * 20, base_id="ab" * 20))
            conn.execute(update(t.meta).values(last_block_id="ab" * 20))
        before = state(db)
        ctx = Context.create(cfg, [node.url], engine, until=400)
        with pytest.raises(ChainMismatch, match=r"undo horizon, block 295.*rewind --to"), \
                started(ctx):
            pass
    assert state(db) == before
