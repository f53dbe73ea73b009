"""``curation-market curator --auto-reveal`` end to end against the test node, with a restart
in the middle of the reveal windows.

Real parts only: the test node serves JSON-RPC on loopback and checks signatures; the
process under test is the real command (a child process), killed with SIGKILL and started
again; its reveals are read back from the node's blocks and judged by the real ingester.
The node's clock is driven by the test (one block per call), so every window decision the
process takes is on chain time, never on the wall clock. Every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from curation_market.config import Market, Settings
from curation_market.curator import salts
from curation_market.curator.client import KEY_ENV, Curator, connect
from curation_market.devnode.node import TestNode
from indexer import schema as t
from indexer.blockfile import write_blocks
from indexer.ingest import Ingester
from indexer.ops import chain_time, op_name_value
from indexer.postdump import import_posts
from indexer.store import Store

WINDOW, PERIOD = 60, 120  # short windows: 20 and 40 blocks
SPACING = 45  # seconds between the three posts
T0 = "2017-11-07T01:00:00"


def post(i: int) -> dict:
    return {"author": "bob", "permlink": f"post-{i}", "parent_author": "", "parent_permlink":
            "test", "title": f"post {i}",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S",
                                     time.gmtime(chain_time(T0) + SPACING * i)),
            "last_payout": "1970-01-01T00:00:00", "active_votes": []}


@pytest.fixture()
def setup(tmp_path: Path):
    path = tmp_path / "blocks.jsonl"
    blocks = import_posts([post(0), post(1), post(2)])
    write_blocks(blocks, path)
    first = blocks[0]["block_num"]
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"[market]\nwindow_seconds = {WINDOW}\n"
                   f"reveal_period_seconds = {PERIOD}\n")
    with TestNode.from_files([path], head=first, lag=2, chain="steem") as node:
        wif = node.add_account("alice")
        salt_file = tmp_path / "salts.json"
        curator = Curator(connect(node.url, wif), wif, "alice", salt_file=salt_file)
        for i in range(3):  # commit on each post right after it appears
            node.advance(first + (SPACING // 3) * i + 1 - node.head)
            curator.commit("bob", f"post-{i}", 10_000 + i)
        node.advance(1)
        yield {"node": node, "wif": wif, "salts": salt_file, "cfg": cfg, "first": first,
               "tmp": tmp_path, "chain_id": curator.chain_id}


def start(s: dict, name: str) -> tuple[subprocess.Popen, Path]:
    """The command as a child process, its stderr in a file; returns once it is watching
    (its first line printed), so the test's clock does not run ahead of its start-up."""
    env = {**os.environ, KEY_ENV: s["wif"]}
    log = s["tmp"] / f"{name}.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "curation_market", "curator", "--auto-reveal", "--node",
             s["node"].url, "--salt-file", str(s["salts"]), "--config", str(s["cfg"]),
             "--poll-seconds", "0.05", "--until-idle", "--max-seconds", "120"],
            env=env, stdout=subprocess.DEVNULL, stderr=fh, text=True)
    deadline = time.monotonic() + 60
    while "auto-reveal for alice" not in log.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the process did not start"
        time.sleep(0.05)
    return proc, log


def reveals(node: TestNode) -> list[tuple[int, str]]:
    """(block, permlink) of every reveal the node included, in chain order."""
    out = []
    for inc in node.included:
        block = node.block(inc.block_num)
        tx = block["transactions"][inc.trx_index]
        for op in tx["operations"]:
            name, value = op_name_value(op)
            body = json.loads(value["json"]) if name == "custom_json" else {}
            if body.get("op") == "reveal":
                out.append((inc.block_num, body["permlink"]))
    return out


def entries(s: dict) -> dict[str, dict]:
    return {e.permlink: e.entry for e in
            [salts.Pending(k, k.rsplit("/", 1)[0], k.rsplit("/", 1)[1], v)
             for k, v in json.loads(s["salts"].read_text()).items()]}


@pytest.mark.parametrize("restart", ["in_flight", "journal_lost"])
def test_auto_reveal_survives_a_restart_mid_window(setup, restart: str) -> None:
    s = setup
    node: TestNode = s["node"]
    created = [chain_time(node.state.timestamp(s["first"] + (SPACING // 3) * i))
               for i in range(3)]
    head_time = chain_time(node.state.timestamp(node.head))
    assert WINDOW < head_time + 3 - created[0] <= WINDOW + PERIOD  # post-0 is revealing
    assert head_time + 3 - created[1] <= WINDOW  # post-1 and post-2 not yet

    first, _ = start(s, "first")
    deadline = time.monotonic() + 60
    while not node.state.pending and time.monotonic() < deadline:
        assert first.poll() is None
        time.sleep(0.02)
    assert len(node.state.pending) == 1, "the first process sent no reveal of post-0"
    first.send_signal(signal.SIGKILL)  # killed with its reveal broadcast, not yet in a block
    first.wait(timeout=10)
    assert entries(s)["post-0"]["auto_reveal"]["status"] in ("sending", "sent")
    if restart == "journal_lost":
        # the reveal lands, and the file forgets it was sent: the chain must tell
        node.advance(1)
        data = json.loads(s["salts"].read_text())
        for entry in data.values():
            entry.pop("auto_reveal", None)
        s["salts"].write_text(json.dumps(data))

    second, log = start(s, "second")
    deadline = time.monotonic() + 90
    while second.poll() is None and time.monotonic() < deadline:
        node.advance(1)  # 3 s of chain time per step; the process polls every 0.05 s
        time.sleep(0.2)
    second.wait(timeout=10)
    errs = log.read_text()
    assert second.returncode == 0, errs

    got = reveals(node)
    assert sorted(p for _, p in got) == ["post-0", "post-1", "post-2"], (got, errs)  # once each
    for block, permlink in got:
        i = int(permlink[-1])
        age = chain_time(node.state.timestamp(block)) - created[i]
        assert WINDOW < age <= WINDOW + PERIOD, (permlink, age)
    if restart == "in_flight":
        assert "reveal included" in errs and "@bob/post-0: reveal sent" not in errs
    kept = entries(s)
    for i in range(3):
        e = kept[f"post-{i}"]
        assert e["retired"]["why"] == "revealed" and len(e["salt"]) == 64  # the salt stays
        assert e["auto_reveal"]["status"] == "included"

    # the market judges the three reveals valid
    settings = Settings(market=Market(window_seconds=WINDOW, reveal_period_seconds=PERIOD))
    cfg = settings.market_config()
    db = f"sqlite:///{s['tmp'] / 'market.db'}"
    store = Store(create_engine(db), s["chain_id"], cfg.rules.label)
    Ingester(store, cfg).run(iter(node_blocks(node, s["first"], node.irreversible)))
    with store.engine.connect() as conn:
        rows = conn.execute(select(t.commits.c.prediction)).scalars().all()
        assert conn.execute(select(t.rejections)).first() is None
    assert sorted(rows) == [10_000, 10_001, 10_002]


def test_status_without_auto_reveal_sends_nothing(setup) -> None:
    s = setup
    env = {**os.environ, KEY_ENV: s["wif"]}
    res = subprocess.run([sys.executable, "-m", "curation_market", "curator", "--node",
                          s["node"].url, "--salt-file", str(s["salts"]), "--config",
                          str(s["cfg"])], env=env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("not revealed yet") == 3 and "3 salt(s) waiting" in res.stdout
    assert not s["node"].state.pending


def node_blocks(node: TestNode, start: int, stop: int):
    """The node's blocks with their virtual ops, as the daemon's fetcher hands them on."""
    for n in range(start, stop + 1):
        block = node.block(n)
        vops = [v["op"] for v in node.state.virtual_ops(n)]
        yield {**block, "block_num": n, "virtual_ops": vops}


def test_an_expired_unincluded_reveal_is_sent_again_and_node_errors_back_off(setup) -> None:
    """In process, one pass at a time: a reveal in flight is not resent while it can still
    be included; once its expiration (chain time) passed without it on chain, it is."""
    from curation.phase import Windows
    from curation_market.curator.autoreveal import AutoRevealer

    s = setup
    node: TestNode = s["node"]
    curator = Curator(connect(node.url, s["wif"]), s["wif"], "alice", salt_file=s["salts"])
    rev = AutoRevealer(curator, Windows(WINDOW, PERIOD), s["salts"])
    key = next(k for k in json.loads(s["salts"].read_text()) if k.endswith("post-0"))
    salt = entries(s)["post-0"]["salt"]
    now = chain_time(node.state.timestamp(node.head))
    salts.update(s["salts"], key, salt, auto_reveal={"status": "sent", "trx_id": "ab" * 20,
                                                     "expiration": now + 30, "attempts": 1})
    st = rev.step()
    assert key in st.waiting and not st.sent and not node.state.pending  # may still land
    node.advance(11)  # 33 s later the transaction has expired, and it is not on chain
    st = rev.step()
    assert key in st.sent and len(node.state.pending) == len(st.sent)  # (post-1 opened too)
    assert entries(s)["post-0"]["auto_reveal"]["attempts"] == 2
    node.advance(1)
    st = rev.step()
    assert key in st.included and not st.sent

    # node errors: each retried after a doubling back-off, then the loop goes on
    calls, slept = {"n": 0}, []
    real_head = rev.head

    def flaky_head() -> tuple[int, int]:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise ConnectionError("node down")
        return real_head()

    rev.head = flaky_head  # type: ignore[method-assign]
    code = rev.run(poll_seconds=0.01, stop=lambda: calls["n"] >= 5, sleep=slept.append)
    assert code == 0 and slept[:3] == [0.5, 1.0, 2.0] and slept[3] == 0.01


def test_a_broadcast_without_answer_stays_in_flight_a_refused_one_is_retried(
        setup, monkeypatch) -> None:
    from beem.transactionbuilder import TransactionBuilder
    from beemapi.exceptions import UnhandledRPCError

    from curation.phase import Windows
    from curation_market.curator.autoreveal import AutoRevealer

    s = setup
    node: TestNode = s["node"]
    curator = Curator(connect(node.url, s["wif"]), s["wif"], "alice", salt_file=s["salts"])
    rev = AutoRevealer(curator, Windows(WINDOW, PERIOD), s["salts"])
    key = next(k for k in json.loads(s["salts"].read_text()) if k.endswith("post-0"))

    def lost(self) -> None:
        raise ConnectionError("connection reset")

    monkeypatch.setattr(TransactionBuilder, "broadcast", lost)
    assert rev.step().sent == [key]
    rec = entries(s)["post-0"]["auto_reveal"]
    assert rec["status"] == "sending" and "connection reset" in rec["error"]
    st = rev.step()
    assert key in st.waiting and not st.sent  # it may have arrived: not resent

    def refused(self) -> None:
        raise UnhandledRPCError("missing required posting authority")

    monkeypatch.setattr(TransactionBuilder, "broadcast", refused)
    now = chain_time(node.state.timestamp(node.head))
    salt = entries(s)["post-0"]["salt"]
    salts.update(s["salts"], key, salt, auto_reveal={**rec, "expiration": now - 1})  # expired
    assert rev.step().sent == [key]  # sent again: the node answers with an error
    rec = entries(s)["post-0"]["auto_reveal"]
    assert (rec["status"], rec["attempts"]) == ("refused", 2)
    assert rev.step().sent == [key]  # a refused reveal is retried at the next poll
    assert entries(s)["post-0"]["auto_reveal"]["attempts"] == 3
    monkeypatch.undo()
    assert rev.step().sent == [key] and len(node.state.pending) == 1
    node.advance(1)
    assert key in rev.step().included
