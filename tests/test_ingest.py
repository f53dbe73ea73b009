"""Ingestion invariants on the real block-17M slice with the demo's simulated curators."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from curation_market.lab.demo import build_demo_blocks, demo_settings
from curation_market.report.build import build_report, to_json
from indexer.blockfile import read_blocks
from indexer.ingest import Ingester
from indexer.store import Store
from tests.dbdump import dump


@pytest.fixture(scope="module")
def demo_file(demo_db: dict) -> Path:
    """The demo's block file, as the session's demo database was replayed from (built once)."""
    return Path(demo_db["blocks"])


def _store(url: str) -> Store:
    s = demo_settings()
    return Store(create_engine(url), s.chain.chain_id, s.market_config().rules.label)


def _replay(store: Store, blocks, batch: int = 500) -> None:
    Ingester(store, demo_settings().market_config(), batch_blocks=batch).run(blocks)


@pytest.fixture(scope="module")
def reference(demo_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    store = _store(f"sqlite:///{tmp_path_factory.mktemp('ref') / 'ref.db'}")
    _replay(store, read_blocks([demo_file]))
    return dump(store.engine)


def test_demo_blocks_are_reproducible(demo_file: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.jsonl"
    build_demo_blocks(again)
    assert again.read_bytes() == demo_file.read_bytes()


def test_replay_twice_is_replay_once(demo_file: Path, reference: dict, db_url) -> None:
    store = _store(db_url("twice"))
    _replay(store, read_blocks([demo_file]))
    _replay(store, read_blocks([demo_file]))
    assert dump(store.engine) == reference


# batch 1 (a transaction per block) is covered on small streams by test_properties; on the
# whole demo it costs a minute on PostgreSQL, so the smallest batch here is 3
@pytest.mark.parametrize("batch", [3, 7, 5000])
def test_batch_size_changes_nothing(demo_file: Path, reference: dict, db_url,
                                    batch: int) -> None:
    store = _store(db_url("b"))
    _replay(store, read_blocks([demo_file]), batch=batch)
    assert dump(store.engine) == reference


def test_stop_and_resume_at_many_blocks(demo_file: Path, reference: dict, db_url) -> None:
    blocks = list(read_blocks([demo_file]))
    rng = random.Random(5)
    cuts = sorted(rng.sample(range(1, len(blocks)), 12))
    store = _store(db_url("resume"))
    start = 0
    for cut in [*cuts, len(blocks)]:
        # a fresh Ingester each time: nothing survives a restart but the database
        _replay(_store(store.engine.url.render_as_string(hide_password=False)),
                iter(blocks[:cut]), batch=97)
        start = cut
    assert start == len(blocks)
    assert dump(store.engine) == reference


def test_sigkill_at_random_moments_then_resume(demo_file: Path, reference: dict,
                                               tmp_path: Path, db_url) -> None:
    """Kill a real `curation-market replay` process mid-flight, restart, same database."""
    db = db_url("killed")
    config = tmp_path / "demo.toml"
    config.write_text("[market]\ninclude_replies = true\n[ingest]\nbatch_blocks = 50\n")
    cmd = [sys.executable, "-m", "curation_market", "replay", str(demo_file), "--db",
           db, "--config", str(config)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    rng = random.Random(11)
    kills = 0
    for _ in range(6):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    assert kills >= 1
    assert dump(create_engine(db)) == reference


def test_report_is_byte_identical_across_runs(demo_file: Path, db_url) -> None:
    outs = []
    for name in ("a", "b"):
        store = _store(db_url(name))
        _replay(store, read_blocks([demo_file]))
        outs.append(to_json(build_report(store.engine)))
    assert outs[0] == outs[1]
    assert b'"markets"' in outs[0]


def test_a_database_refuses_other_rules(db_url) -> None:
    from curation_market.config import Settings
    from rewards.rules import named

    url = db_url("x")
    Store(create_engine(url), "0" * 64, named("seed").label)
    with pytest.raises(ValueError, match="fresh --db"):
        Store(create_engine(url), "0" * 64, named("commit-reveal").label)
    assert Settings().market_config().rules == named("seed")
