"""``devnode --live``: real posts and votes, shifted to the node's chain time, appear in the
blocks it produces; the daemon indexes them as they become irreversible, a curator commits on
one, ``curator --auto-reveal``'s loop reveals it in its window, and the payout virtual ops
settle every market with the F the dump recorded.

The daemon runs for real (its scheduler in a thread, beem over loopback HTTP); the node's
clock is driven by the test, one block per call, with a deadline.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from curation.phase import Windows
from curation_market.config import load_settings
from curation_market.curator.autoreveal import AutoRevealer
from curation_market.curator.client import Curator, connect
from curation_market.daemon.run import Daemon
from curation_market.devnode.node import TestNode
from curation_market.lab.demo import bundled_posts
from indexer import schema as t
from indexer.amounts import DOLLAR, amount_of
from indexer.blockfile import write_blocks
from indexer.ops import chain_time, op_name_value
from indexer.postdump import import_posts

WINDOW, PERIOD, PAYOUT, SPACING = 60, 120, 600, 45
SEED = {"author": "bob", "permlink": "seed", "parent_author": "", "parent_permlink": "test",
        "title": "seed", "created": "2017-11-07T01:00:00", "last_payout": "1970-01-01T00:00:00",
        "active_votes": []}
CONFIG = f"""
[market]
window_seconds = {WINDOW}
reveal_period_seconds = {PERIOD}
[ingest]
batch_blocks = 50
[node]
batch_size = 50
poll_seconds = 0.05
health_seconds = 0.5
sweep_seconds = 0.5
"""


@pytest.fixture()
def live_node(tmp_path: Path):
    path = tmp_path / "seed.jsonl"
    blocks = import_posts([SEED])
    write_blocks(blocks, path)
    posts = [p for p in bundled_posts() if not p.get("parent_author")][:8]
    with TestNode.from_files([path], head=blocks[0]["block_num"], lag=3, chain="steem") as node:
        plan = node.add_live_posts(posts, lead=30, spacing=SPACING, payout_after=PAYOUT)
        yield node, plan


def test_plan_keeps_real_votes_and_payouts_on_the_nodes_clock(live_node) -> None:
    node, plan = live_node
    assert len(plan.posts) == 8 and not plan.refused
    firsts = sorted(plan.blocks)
    head_time = chain_time(node.state.timestamp(node.head))
    assert chain_time(plan.blocks[firsts[0]]["timestamp"]) == head_time + 30
    originals = {(p["author"], p["permlink"]): p for p in bundled_posts()}
    for i, moved in enumerate(plan.posts):
        orig = originals[(moved["author"], moved["permlink"])]
        created = chain_time(moved["created"])
        assert created == head_time + 30 + SPACING * i
        shift = created - chain_time(orig["created"])
        kept = [v for v in orig["active_votes"] if v.get("time") and
                chain_time(v["time"]) + shift < created + PAYOUT]
        assert [v["time"] for v in moved["active_votes"]] == \
            [time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(chain_time(v["time"]) + shift))
             for v in kept]  # every vote at its real offset from the post
    # nothing of it is served before the head reaches it
    p0 = plan.posts[0]
    assert node.state.comment(p0["author"], p0["permlink"]) is None
    node.advance(firsts[0] - node.head)
    got = node.handle({"jsonrpc": "2.0", "id": 1, "method": "database_api.find_comments",
                       "params": {"comments": [[p0["author"], p0["permlink"]]]}}).result
    assert got["comments"][0]["created"] == p0["created"]


def test_live_posts_are_indexed_revealed_and_settled_by_the_daemon(live_node,
                                                                    tmp_path: Path) -> None:
    node, plan = live_node
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG)
    db = f"sqlite:///{tmp_path / 'daemon.db'}"
    last = max(plan.vops) + 2
    wif = node.add_account("alice")
    salt_file = tmp_path / "salts.json"
    curator = Curator(connect(node.url, wif), wif, "alice", salt_file=salt_file)
    revealer = AutoRevealer(curator, Windows(WINDOW, PERIOD), salt_file)
    target = plan.posts[0]
    final = {}  # (author, permlink) → F the payout vop carries
    for ops in plan.vops.values():
        for op in ops:
            name, value = op_name_value(op)
            if name == "comment_reward":
                final[(value["author"], value["permlink"])] = amount_of(value["payout"], DOLLAR)
    f_target = final[(target["author"], target["permlink"])]

    daemon = Daemon(load_settings(cfg), [node.url], create_engine(db), metrics_port=0,
                    until=last)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run()), daemon=True)
    thread.start()
    committed = False
    deadline = time.monotonic() + 120
    while thread.is_alive():
        assert time.monotonic() < deadline, f"daemon stuck at {daemon.ingester.checkpoint}"
        node.advance(1)
        if not committed and node.state.comment(target["author"], target["permlink"]):
            curator.commit(target["author"], target["permlink"], f_target)  # in the band
            committed = True
        if committed and node.head % 5 == 0:
            revealer.step()
        if node.irreversible > last:
            time.sleep(0.05)
        else:
            time.sleep(0.002)
    assert codes == [0] and daemon.ingester.checkpoint == last

    p, s, c = t.posts.c, t.settlements.c, t.commits.c
    with create_engine(db).connect() as conn:
        rows = conn.execute(select(p.author, p.permlink, p.created, s.final_payout)
                            .join(t.settlements, s.post_id == p.id)).all()
        commit = conn.execute(select(c.prediction, c.qualified, c.status)).one()
        assert conn.execute(select(t.rejections)).first() is None
    settled = {(r.author, r.permlink): (r.created, r.final_payout) for r in rows}
    assert set(settled) == {(m["author"], m["permlink"]) for m in plan.posts}
    for m in plan.posts:
        key = (m["author"], m["permlink"])
        assert settled[key] == (chain_time(m["created"]), final[key])
    assert (commit.prediction, commit.qualified, commit.status) == (f_target, True, "settled")
