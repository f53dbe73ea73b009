"""The daemon against the real test node: beem speaks JSON-RPC over loopback HTTP for real.

Nothing is mocked: the node is curation_market.devnode on an ephemeral port. A job's logic is
tested by calling the job functions (curation_market.daemon.jobs) in the test's own loop, in
lock step with the node and with a deadline; the scheduler is tested once end to end
(``Daemon.run``, and the CLI under SIGTERM, in this process), SIGKILL in a child process
(``python -m curation_market run``). The reference for every comparison is a plain replay of
the same blocks.
"""

from __future__ import annotations

import gzip
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
import requests
from sqlalchemy import create_engine, func, select, update
from typer.testing import CliRunner

from curation_market.cli.main import app
from curation_market.config import Settings, load_settings
from curation_market.daemon.context import Context
from curation_market.daemon.jobs import PAYOUT_SECONDS, follow, health, sweep, upkeep
from curation_market.daemon.run import Daemon, start, start_block, started
from curation_market.devnode.node import TestNode
from curation_market.report.build import build_report, to_json
from indexer import schema as t
from indexer.accounts import globals_from
from indexer.chain import ChainMismatch
from indexer.ingest import Ingester
from indexer.store import Store
from tests.dbdump import dump
from tests.helpers import ingest, market_stream, new_store

DATA = Path(__file__).parent / "data"
BLOCKS = DATA / "hive5m_raw_blocks.jsonl.gz"
OPS = DATA / "hive5m_ops.jsonl.gz"
ROOT = Path(__file__).parent.parent
NODE_TABLES = {"node_status", "account_snapshots", "vesting_prices"}  # what the node said

CONFIG = """
[ingest]
batch_blocks = {batch}
[node]
batch_size = {fetch}
poll_seconds = 0.05
retries = 3
backoff_seconds = 0.05
health_seconds = 0.5
sweep_seconds = 0.5
"""


def config(tmp_path: Path, batch: int = 100, fetch: int = 50) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(batch=batch, fetch=fetch))
    return path


def market_dump(url: str) -> dict:
    return {k: v for k, v in dump(create_engine(url)).items() if k not in NODE_TABLES}


def replay(node: TestNode, last: int, url: str, cfg_path: Path) -> None:
    """The reference: the node's blocks 1..last with their virtual ops, through replay."""
    settings = load_settings(cfg_path)
    # the daemon hashes with its node's chain id (chain.chain_id unset): so does the reference
    cfg = replace(settings.market_config(), chain_id=node.state.chain_id,
                  chain=node.state.flavour.name.lower())
    store = Store(create_engine(url), settings.chain.chain_id, cfg.rules.label)
    store.set_globals(*globals_from(node.state.globals_))
    blocks = []
    for n in range(1, last + 1):
        block = dict(node.block(n))
        block["block_num"] = n
        block["virtual_ops"] = [o["op"] for o in node.state.ops_in_block(n, True)]
        blocks.append(block)
    Ingester(store, cfg, 100).run(blocks)


def run_in_thread(daemon: Daemon) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run()), daemon=True)
    thread.start()
    return thread, codes


def wait_for(cond, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def drive(ctx: Context, timeout: float = 60.0) -> None:
    """The follow job, called here until it reaches ``until`` (it then sets ``stopping``)."""
    deadline = time.monotonic() + timeout
    while not ctx.stopping.is_set():
        assert time.monotonic() < deadline, f"stuck at block {ctx.ingester.checkpoint}"
        follow(ctx)


def test_catch_up_then_follow_equals_replay(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    db = f"sqlite:///{tmp_path / 'daemon.db'}"
    with TestNode.from_files([BLOCKS], ops=[OPS], head=1_100, lag=20) as node:
        daemon = Daemon(load_settings(cfg), [node.url], create_engine(db), metrics_port=0,
                        until=1_250)
        thread, codes = run_in_thread(daemon)
        wait_for(lambda: daemon.ingester.checkpoint >= 1_080)  # caught up with the LIB

        def scrape() -> str:
            return requests.get(f"http://127.0.0.1:{daemon.metrics_port}/metrics",
                                timeout=5).text
        # published when the follow run that wrote the block returns (its last blocks are
        # written one by one, with undo data: a moment after the checkpoint moved)
        wait_for(lambda: "curation_indexed_block 108" in scrape(), 5)
        assert "curation_irreversible_block 1080.0" in scrape()
        for _ in range(170):  # then follow: blocks become irreversible one by one
            node.advance(1)
            time.sleep(0.005)
        thread.join(30)
        assert codes == [0] and daemon.ingester.checkpoint == 1_250
        ref = f"sqlite:///{tmp_path / 'replay.db'}"
        replay(node, 1_250, ref, cfg)
    assert market_dump(db) == market_dump(ref)
    status = CliRunner().invoke(app, ["status", "--db", db, "--config", str(cfg)])
    assert status.exit_code == 0, status.output
    assert "indexed block            1,250" in status.output
    assert "last irreversible block" in status.output and "lag (blocks)" in status.output
    doc = orjson.loads(CliRunner().invoke(app, ["status", "--db", db, "--config", str(cfg),
                                                "--format", "json"]).output)
    assert doc["indexed_block"] == 1_250 and doc["lag_blocks"] == doc["irreversible_block"] - 1250


def test_previous_mismatch_stops_before_writing(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path))
    db = f"sqlite:///{tmp_path / 'daemon.db'}"
    with TestNode.from_files([BLOCKS], ops=[OPS], head=1_100, lag=20) as node:
        engine = create_engine(db)
        with started(Context.create(settings, [node.url], engine, until=500)) as ctx:
            drive(ctx)
        assert ctx.ingester.checkpoint == 500
        with engine.begin() as conn:  # the database now claims another chain's blocks
            conn.execute(update(t.meta).values(last_block_id="ff" * 20))
            conn.execute(update(t.undo_blocks).values(block_id="ff" * 20, base_id="ff" * 20))
        before = market_dump(db)
        # the start compares the stored block ids with the node's (curation_market.daemon.
        # forks): none of the undo window agrees, so it stops before fetching anything
        ctx = Context.create(settings, [node.url], engine, until=900)
        with pytest.raises(ChainMismatch, match="block 500 is .* but ours is ffff") as exc:
            start(ctx)
        assert ctx.fetcher is None and ctx.ingester.checkpoint == 500
    assert "no stored block back to the undo horizon" in str(exc.value)
    assert "rewind --to BLOCK" in str(exc.value)
    assert market_dump(db) == before


def test_fresh_database_starts_at_the_nodes_first_block(tmp_path: Path) -> None:
    """A node serving a slice (like the demo chain) has no block 1: start where it starts."""
    sliced = tmp_path / "slice.jsonl"
    with gzip.open(BLOCKS, "rb") as fh:
        sliced.write_bytes(b"".join(ln for ln in fh if orjson.loads(ln)["_block_num"] >= 300))
    settings = load_settings(config(tmp_path))
    engine = create_engine(f"sqlite:///{tmp_path / 'daemon.db'}")
    with TestNode.from_files([sliced], head=600, lag=20) as node:
        first = node.state.first
        assert first >= 300
        probe = Context.create(settings, [node.url], engine, from_block=first + 7)
        assert start_block(probe) == first + 7  # asked for explicitly
        with started(Context.create(settings, [node.url], engine, until=first + 50)) as ctx:
            drive(ctx)
        assert ctx.ingester.checkpoint == first + 50
        # the node's globals reach the running state at once (SP of commits on a fresh db)
        assert ctx.ingester.state.globals.total_vesting_shares > 0
        again = Context.create(settings, [node.url], engine, from_block=first + 7)
        assert start_block(again) == first + 51  # a checkpoint wins over from_block
        health(again)  # the recorded chain's head is years old by the wall clock
        assert again.stale and again.metrics.node_stale._value.get() == 1
        assert again.node is not None and again.node.irreversible == 580


def test_sweep_and_upkeep_count_on_chain_time(tmp_path: Path) -> None:
    """The timer jobs, called directly on a database of known markets: both count on the
    last indexed block's chain time (2017 here), never the wall clock."""
    window = Settings().market_config().rules.author_window
    late = window + 1_000  # the first three markets' history is outside the window by then
    s = market_stream(posts=3)  # three markets, paid a week after they appear
    s.post(late, "author7", "paid-late")
    s.payout(late + PAYOUT_SECONDS, "author7", "paid-late", 5_000)
    s.post(late + 10, "author8", "overdue")  # never paid
    s.post(late + 200, "author9", "young")  # never paid either, but not a week old yet
    s.vote(late + PAYOUT_SECONDS + 100, "voter0", "author9", "young", 10)  # time moves on
    store = new_store(f"sqlite:///{tmp_path / 'markets.db'}")
    ingest(store, s.blocks())
    ctx = Context.create(Settings(), ["http://127.0.0.1:9"], store.engine)  # never asked
    sweep(ctx)
    m = ctx.metrics
    with store.engine.connect() as conn:
        settled = conn.execute(select(func.count()).select_from(t.settlements)).scalar()
        rejected = dict(conn.execute(select(t.rejections.c.reason, func.count())
                                     .group_by(t.rejections.c.reason)).all())
        history = conn.execute(select(func.count()).select_from(t.author_history)).scalar()
    assert settled >= 3 and m.settlements._value.get() == settled
    assert m.overdue_markets._value.get() == 1  # author8's; author9's is days younger
    for reason, count in rejected.items():
        assert m.rejected_ops.labels(reason=reason)._value.get() == count
    assert history == 4 and upkeep(ctx) == 1  # author7's payout alone is inside the window


def _cli_run(url: str, db: str, cfg: Path, until: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "curation_market", "run", "--node", url, "--db", db, "--config",
         str(cfg), "--until", str(until), *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)})


def _checkpoint(db: str) -> int:
    engine = create_engine(db)
    try:
        with engine.connect() as conn:
            return conn.execute(select(t.meta.c.last_block)).scalar() or 0
    except Exception:  # noqa: BLE001 - not created yet
        return 0
    finally:
        engine.dispose()


def test_sigkill_at_random_moments_ends_byte_identical(tmp_path: Path) -> None:
    """20+ SIGKILLs during a catch-up, restarting each time: same report, same database.

    A quarter of the kills land at a random moment of the process's start (imports, the
    chain check, the first fetch); the others at a random moment after it has written again,
    so every restart gets further however slowly a loaded machine starts a process."""
    cfg = config(tmp_path, batch=10, fetch=10)
    until = 1_400
    rng = random.Random(20261123)
    with TestNode.from_files([BLOCKS], ops=[OPS], head=1_420, lag=20) as node:
        ref = f"sqlite:///{tmp_path / 'ref.db'}"
        p = _cli_run(node.url, ref, cfg, until)
        assert p.wait(120) == 0, p.stderr.read() if p.stderr else ""
        db = f"sqlite:///{tmp_path / 'killed.db'}"
        kills, mid = 0, 0
        deadline = time.monotonic() + 600  # ~60 s on an idle machine; CI's is loaded
        while kills < 20:
            before = _checkpoint(db)
            assert before < until, f"the catch-up ended after only {kills} kills"
            p = _cli_run(node.url, db, cfg, until)
            if rng.random() < 0.25:
                time.sleep(rng.uniform(0.05, 1.0))
            else:
                while _checkpoint(db) == before and p.poll() is None:
                    assert time.monotonic() < deadline, f"only {kills} kills in 600 s"
                    time.sleep(0.01)
                time.sleep(rng.uniform(0.0, 0.15))
            assert p.poll() is None, p.stderr.read() if p.stderr else ""
            p.send_signal(signal.SIGKILL)
            p.wait(10)
            kills += 1
            mid += 0 < _checkpoint(db) < until
            assert time.monotonic() < deadline, f"only {kills} kills in 600 s"
        p = _cli_run(node.url, db, cfg, until)
        assert p.wait(120) == 0, p.stderr.read() if p.stderr else ""
    assert kills >= 20 and mid >= 10  # most kills landed during the catch-up itself
    assert to_json(build_report(create_engine(db))) == to_json(build_report(create_engine(ref)))
    assert market_dump(db) == market_dump(ref)


def test_stop_ends_follow_at_a_batch_boundary(tmp_path: Path) -> None:
    """``stopping`` set while batches are queued: the follow run ends after the batch it is
    writing; the database is exactly a replay to that block."""
    settings = load_settings(config(tmp_path, batch=20, fetch=20))
    db = f"sqlite:///{tmp_path / 'daemon.db'}"
    with TestNode.from_files([BLOCKS], ops=[OPS], head=2_000, lag=20) as node:
        with started(Context.create(settings, [node.url], create_engine(db))) as ctx:
            assert ctx.fetcher is not None
            wait_for(lambda: ctx.fetcher.queue.qsize() >= 3, 30)  # more than one batch waits
            written: list[int] = []

            def stop_after_first(stats, lib) -> None:  # type: ignore[no-untyped-def]
                written.append(stats.last_block)
                ctx.stop()

            ctx.batch_log = stop_after_first  # type: ignore[assignment]
            follow(ctx)
        assert written == [20] and ctx.ingester.checkpoint == 20
        ref = f"sqlite:///{tmp_path / 'replay.db'}"
        replay(node, 20, ref, config(tmp_path, batch=20, fetch=20))
    assert market_dump(db) == market_dump(ref)


def test_sigterm_stops_the_running_daemon_at_a_batch_boundary(tmp_path: Path) -> None:
    """The real signal, in this process: ``run`` (scheduler, fetcher thread) installs the
    handler, stops at a batch boundary, exits 0, says where, and puts the old handler back."""
    cfg = config(tmp_path, batch=20, fetch=20)
    db = f"sqlite:///{tmp_path / 'daemon.db'}"
    before = signal.getsignal(signal.SIGTERM)
    sent = threading.Event()

    def terminate() -> None:
        deadline = time.monotonic() + 60
        while _checkpoint(db) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        if _checkpoint(db):  # written: the handler is installed (before the first job)
            os.kill(os.getpid(), signal.SIGTERM)
            sent.set()

    with TestNode.from_files([BLOCKS], ops=[OPS], head=2_000, lag=20) as node:
        killer = threading.Thread(target=terminate, daemon=True)
        killer.start()
        # ``until`` bounds the run if the signal never came
        result = CliRunner().invoke(app, ["run", "--node", node.url, "--db", db, "--config",
                                          str(cfg), "--until", "1980"])
        killer.join(5)
        assert sent.is_set() and result.exit_code == 0, result.output
        stopped = _checkpoint(db)
        assert 0 < stopped < 1_980 and stopped % 20 == 0
        assert f"stopped at block {stopped:,}" in result.stderr
        assert signal.getsignal(signal.SIGTERM) == before
        ref = f"sqlite:///{tmp_path / 'replay.db'}"
        replay(node, stopped, ref, cfg)
    assert market_dump(db) == market_dump(ref)  # a whole batch boundary, nothing half-written


def test_head_mode_over_micro_forks_ends_like_irreversible(tmp_path: Path) -> None:
    """The node makes a block only once the current head has been shown, so every fork is on
    screen before it is replaced (in lock step: follow, look, advance)."""
    cfg = config(tmp_path, batch=50, fetch=25)
    until = 700
    irr = f"sqlite:///{tmp_path / 'irreversible.db'}"
    with TestNode.from_files([BLOCKS], ops=[OPS], head=until + 10, lag=3) as plain:
        replay(plain, until, irr, cfg)  # what the irreversible chain holds, no fork anywhere
    head = f"sqlite:///{tmp_path / 'head.db'}"
    # a depth-2 fork every 3 blocks: the 20-odd steps from 680 see at least 5 of them
    with TestNode.from_files([BLOCKS], ops=[OPS], head=680, lag=3, interval=None,
                             fork_every=3, fork_depth=2) as node:
        ctx = Context.create(load_settings(cfg), [node.url], create_engine(head),
                             head_mode=True, until=until)
        shown: list[dict] = []
        deadline = time.monotonic() + 120
        with started(ctx):
            while not ctx.stopping.is_set():
                assert time.monotonic() < deadline, f"stuck at {ctx.ingester.checkpoint}"
                follow(ctx)
                if ctx.provisional.get("head_id") == node.block(node.head)["block_id"]:
                    shown.append(ctx.provisional)
                    node.advance(1)
    assert shown, "head mode never showed provisional blocks"
    assert all(v["to_block"] - v["from_block"] < 25 for v in shown)
    assert ctx.forks_seen >= 5, f"{ctx.forks_seen} forks seen: the test proves little"
    assert ctx.metrics.forks._value.get() == ctx.forks_seen
    assert market_dump(head) == market_dump(irr)


def test_client_shared_between_threads_keeps_batches_whole(tmp_path: Path) -> None:
    """The health job asks for the node state while the fetcher queues a batch on the same
    beem instance: without the client's lock part of the batch went out with that call."""
    from indexer.chain import NodeClient

    with TestNode.from_files([BLOCKS], ops=[OPS], head=2_000, lag=20) as node:
        client = NodeClient([node.url], retries=1)
        done = threading.Event()
        errors: list[BaseException] = []

        def health() -> None:
            while not done.is_set():
                try:
                    client.state()
                except BaseException as exc:  # noqa: BLE001 - collected for the assert
                    errors.append(exc)

        thread = threading.Thread(target=health, daemon=True)
        thread.start()
        try:
            for start in (1, 501, 1001):
                assert len(client.blocks(start, start + 499)) == 500
        finally:
            done.set()
            thread.join(10)
    assert errors == []


def test_a_node_behind_the_batch_is_never_read_past_its_lib(tmp_path: Path) -> None:
    """A node whose LIB is below the batch answers get_ops_in_block with no ops and no error:
    its blocks would settle nothing. The batch must come from a node that is far enough."""
    from indexer.chain import NodeClient

    with TestNode.from_files([BLOCKS], ops=[OPS], head=1_100, lag=20) as ahead, \
            TestNode.from_files([BLOCKS], ops=[OPS], head=1_080, lag=180) as behind:
        truth = NodeClient([ahead.url], retries=1).blocks(901, 1_080)
        assert sum(len(b["virtual_ops"]) for b in truth) > 0  # the range has payouts
        client = NodeClient([behind.url, ahead.url], retries=3, backoff=0.01)
        got = client.blocks(901, 1_080)
    assert client.failovers >= 1
    assert got == truth
