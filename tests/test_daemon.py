"""The daemon against the real test node: beem speaks JSON-RPC over loopback HTTP for real.

Nothing is mocked: the node is curation_market.devnode on an ephemeral port, the daemon is either
``Daemon.run`` in a thread or ``python -m curation_market run`` in a child process (for SIGKILL and
SIGTERM). The reference for every comparison is a plain replay of the same blocks.
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
from sqlalchemy import create_engine, select, update
from typer.testing import CliRunner

from curation_market.cli.main import app
from curation_market.config import load_settings
from curation_market.daemon.jobs import Daemon
from curation_market.devnode.node import TestNode
from curation_market.report.build import build_report, to_json
from indexer import schema as t
from indexer.accounts import globals_from
from indexer.chain import ChainMismatch
from indexer.ingest import Ingester
from indexer.store import Store
from tests.dbdump import dump

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


def test_catch_up_then_follow_equals_replay(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    db = f"sqlite:///{tmp_path / 'daemon.db'}"
    with TestNode.from_files([BLOCKS], ops=[OPS], head=1_100, lag=20) as node:
        daemon = Daemon(load_settings(cfg), [node.url], create_engine(db), metrics_port=0,
                        until=1_250)
        thread, codes = run_in_thread(daemon)
        wait_for(lambda: daemon.ingester.checkpoint >= 1_080)  # caught up with the LIB
        scrape = requests.get(f"http://127.0.0.1:{daemon.metrics_port}/metrics", timeout=5).text
        assert "curation_indexed_block 1080.0" in scrape or "curation_indexed_block 108" in scrape
        assert "curation_irreversible_block 1080.0" in scrape
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
    cfg = config(tmp_path)
    db = f"sqlite:///{tmp_path / 'daemon.db'}"
    with TestNode.from_files([BLOCKS], ops=[OPS], head=1_100, lag=20) as node:
        engine = create_engine(db)
        assert Daemon(load_settings(cfg), [node.url], engine, until=500).run() == 0
        with engine.begin() as conn:  # the database now claims another chain's block 500
            conn.execute(update(t.meta).values(last_block_id="ff" * 20))
        before = market_dump(db)
        daemon = Daemon(load_settings(cfg), [node.url], create_engine(db), until=900)
        assert daemon.run() == 1
    assert isinstance(daemon.error, ChainMismatch)
    assert "block 501 names previous" in str(daemon.error)
    assert "stored block 500" in str(daemon.error)
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
        probe = Daemon(settings, [node.url], engine, from_block=first + 7)
        probe.node = probe.client.state()
        assert probe.start_block() == first + 7  # asked for explicitly
        daemon = Daemon(settings, [node.url], engine, until=first + 50)
        assert daemon.run() == 0, daemon.error
        assert daemon.ingester.checkpoint == first + 50
        # the node's globals reach the running state at once (SP of commits on a fresh db)
        assert daemon.ingester.state.globals.total_vesting_shares > 0
        again = Daemon(settings, [node.url], engine, from_block=first + 7)
        again.node = again.client.state()
        assert again.start_block() == first + 51  # a checkpoint wins over from_block


def _cli_run(url: str, db: str, cfg: Path, until: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "curation_market", "run", "--node", url, "--db", db, "--config",
         str(cfg), "--until", str(until), *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)})


def _checkpoint(db: str) -> int:
    try:
        with create_engine(db).connect() as conn:
            return conn.execute(select(t.meta.c.last_block)).scalar() or 0
    except Exception:  # noqa: BLE001 - not created yet
        return 0


def test_sigkill_at_random_moments_ends_byte_identical(tmp_path: Path) -> None:
    """20+ SIGKILLs during a catch-up, restarting each time: same report, same database."""
    cfg = config(tmp_path, batch=10, fetch=10)
    until = 1_400
    rng = random.Random(20261123)
    with TestNode.from_files([BLOCKS], ops=[OPS], head=1_420, lag=20) as node:
        ref = f"sqlite:///{tmp_path / 'ref.db'}"
        p = _cli_run(node.url, ref, cfg, until)
        assert p.wait(60) == 0, p.stderr.read() if p.stderr else ""
        db = f"sqlite:///{tmp_path / 'killed.db'}"
        kills, mid, stalled, last = 0, 0, 0, 0
        deadline = time.monotonic() + 600  # ~100 s on an idle machine; CI's is loaded
        while kills < 20:
            assert time.monotonic() < deadline, f"only {kills} kills in 600 s"
            p = _cli_run(node.url, db, cfg, until)
            # a loaded machine starts a process slowly: while kills find no progress, wait
            # longer before the next one (a kill before the first batch tests nothing)
            time.sleep(rng.uniform(0.6, 2.0) * 2 ** min(stalled, 4))
            if p.poll() is not None:
                assert p.returncode == 0, p.stderr.read() if p.stderr else ""
                break  # caught up before this kill
            p.send_signal(signal.SIGKILL)
            p.wait(10)
            kills += 1
            now = _checkpoint(db)
            mid += 0 < now < until
            stalled, last = (stalled + 1 if now == last else 0), now
        if _checkpoint(db) < until:
            p = _cli_run(node.url, db, cfg, until)
            assert p.wait(120) == 0
    assert kills >= 20 and mid >= 5  # most kills landed during the catch-up itself
    assert to_json(build_report(create_engine(db))) == to_json(build_report(create_engine(ref)))
    assert market_dump(db) == market_dump(ref)


def test_sigterm_stops_at_a_batch_boundary(tmp_path: Path) -> None:
    cfg = config(tmp_path, batch=20, fetch=20)
    db = f"sqlite:///{tmp_path / 'daemon.db'}"
    with TestNode.from_files([BLOCKS], ops=[OPS], head=2_000, lag=20) as node:
        p = _cli_run(node.url, db, cfg, 100_000)
        wait_for(lambda: _checkpoint(db) > 0, 30)
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0
        stopped = _checkpoint(db)
        stderr = p.stderr.read().decode() if p.stderr else ""
        assert f"stopped at block {stopped:,}" in stderr
        ref = f"sqlite:///{tmp_path / 'replay.db'}"
        replay(node, stopped, ref, cfg)
    assert market_dump(db) == market_dump(ref)  # a whole batch boundary, nothing half-written


@pytest.mark.parametrize("fork_every", [5])
def test_head_mode_over_micro_forks_ends_like_irreversible(tmp_path: Path,
                                                           fork_every: int) -> None:
    cfg = config(tmp_path, batch=50, fetch=25)
    until = 700
    irr = f"sqlite:///{tmp_path / 'irreversible.db'}"
    with TestNode.from_files([BLOCKS], ops=[OPS], head=until + 10, lag=3) as node:
        assert Daemon(load_settings(cfg), [node.url], create_engine(irr), until=until).run() == 0
    head = f"sqlite:///{tmp_path / 'head.db'}"
    # The node produces a block only once the daemon has shown the current head (or after a
    # few seconds, while it catches up), so every fork is on screen before it is replaced,
    # however slow the machine is.
    with TestNode.from_files([BLOCKS], ops=[OPS], head=640, lag=3, interval=None,
                             fork_every=fork_every, fork_depth=2) as node:
        daemon = Daemon(load_settings(cfg), [node.url], create_engine(head), head_mode=True,
                        until=until)
        shown: list[dict] = []
        thread, codes = run_in_thread(daemon)
        stepped = time.monotonic()
        while thread.is_alive():
            view = daemon.provisional
            if view.get("head_id") == node.block(node.head)["block_id"]:
                shown.append(view)
            elif time.monotonic() - stepped < 5:
                time.sleep(0.005)
                continue
            node.advance(1)
            stepped = time.monotonic()
        assert codes == [0], daemon.error
    assert shown, "head mode never showed provisional blocks"
    assert daemon.forks_seen >= 5, f"{daemon.forks_seen} forks seen: the test proves little"
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
