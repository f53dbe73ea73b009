"""End to end on real chain data bundled with the project."""

from __future__ import annotations

import gzip
from collections import defaultdict
from pathlib import Path

import orjson
from sqlalchemy import select

from curation.market import MarketConfig
from curation.records import VOP_TRX
from indexer import schema as t
from indexer.amounts import DOLLAR, amount_of
from indexer.ingest import Ingester
from indexer.ops import Adapter
from indexer.postdump import import_posts
from indexer.store import Store

DATA = Path(__file__).parent / "data"


def test_steem_17m_paid_posts_settle_with_their_real_payout(steem_posts, sqlite_engine) -> None:
    store = Store(sqlite_engine)
    Ingester(store, MarketConfig(include_replies=True)).run(iter(import_posts(steem_posts)))
    with sqlite_engine.connect() as conn:
        rows = conn.execute(select(t.posts.c.author, t.posts.c.permlink, t.settlements.c.
                                   final_payout).join(t.settlements,
                                                      t.settlements.c.post_id == t.posts.c.id))
        settled = {(a, p): f for a, p, f in rows}
        votes = conn.execute(select(t.votes)).all()
    paid_with_votes = [p for p in steem_posts
                       if p["last_payout"] > "1970-01-01T00:00:00" and p["active_votes"]]
    assert len(paid_with_votes) == 28
    declined = 0
    for p in paid_with_votes:
        expected = amount_of(p["total_payout_value"], DOLLAR) + amount_of(
            p["curator_payout_value"], DOLLAR)
        if p["max_accepted_payout"] == "0.000 SBD":
            declined += 1
            expected = 0
        assert settled[(p["author"], p["permlink"])] == expected
    assert declined >= 1
    assert len(votes) == sum(len(p["active_votes"]) for p in steem_posts)


def test_net_rshares_rebuilt_from_votes_match_the_vote_list(steem_posts, sqlite_engine) -> None:
    store = Store(sqlite_engine)
    Ingester(store, MarketConfig()).run(iter(import_posts(steem_posts)))
    with sqlite_engine.connect() as conn:
        got = {(a, p): n for a, p, n in conn.execute(
            select(t.posts.c.author, t.posts.c.permlink, t.posts.c.net_rshares))}
    for p in steem_posts:
        paid = p["last_payout"] > "1970-01-01T00:00:00"
        votes = [v for v in p["active_votes"] if not paid or v["time"] <= p["last_payout"]]
        assert got[(p["author"], p["permlink"])] == sum(int(v["rshares"]) for v in votes)


def test_real_hive_blocks_parse_without_rejections(hive_raw_blocks) -> None:
    adapter = Adapter(chain="hive")
    kinds = defaultdict(int)
    for raw in hive_raw_blocks:
        block = adapter.block(raw)
        for rec in block.records:
            kinds[type(rec).__name__] += 1
    assert "BadOp" not in kinds
    assert kinds["Comment"] > 0 and kinds["Vote"] > 0


def _ops_by_position() -> dict[tuple, list[dict]]:
    by_pos: dict[tuple, list[dict]] = defaultdict(list)
    with gzip.open(DATA / "hive5m_ops.jsonl.gz", "rb") as fh:
        for line in fh:
            row = orjson.loads(line)
            key = (row["block"], row.get("trx_in_block"), row.get("op_in_trx"),
                   bool(row.get("virtual_op")), row.get("trx_id"))
            by_pos[key].append(row)
    return by_pos


def _records(adapter: Adapter, row: dict) -> list:
    virtual = bool(row["virtual_op"])
    block = {"block_num": row["block"], "timestamp": row["timestamp"],
             "transactions": [] if virtual else [{"operations": [row["op"]]}],
             "virtual_ops": [row["op"]] if virtual else []}
    return [(type(r).__name__, {k: getattr(r, k) for k in r.__slots__ if k != "pos"})
            for r in adapter.block(block).records]


def test_both_node_encodings_give_the_same_records() -> None:
    """The recorded ops hold many ops twice: condenser and block_api encodings."""
    adapter = Adapter(chain="hive")
    compared = 0
    kinds = set()
    for rows in _ops_by_position().values():
        condenser = [r for r in rows if isinstance(r["op"], list)]
        appbase = [r for r in rows if isinstance(r["op"], dict)]
        for a in condenser:
            for b in appbase:
                if a["op"][0] + "_operation" != b["op"]["type"]:
                    continue
                ra, rb = _records(adapter, a), _records(adapter, b)
                assert ra == rb, (a, b)
                if ra:
                    compared += 1
                    kinds.add(ra[0][0])
    assert compared >= 20
    assert {"Comment", "Vote", "EffectiveVote", "Payout", "VestingDelta"} <= kinds


def test_hive_comment_reward_f_is_the_sum_of_its_parts() -> None:
    adapter = Adapter(chain="hive")
    op = ["comment_reward", {"author": "teego", "permlink": "x", "payout": "1.306 HBD",
                             "total_payout_value": "1.004 HBD",
                             "curator_payout_value": "0.301 HBD",
                             "beneficiary_payout_value": "0.000 HBD", "author_rewards": 610}]
    block = adapter.block({"block_num": 5, "timestamp": "2016-08-14T15:28:48",
                           "virtual_ops": [op]})
    (payout,) = block.records
    assert payout.amount == 1305 and payout.pos == (5, VOP_TRX, 0)
    steem = ["comment_reward", {"author": "a", "permlink": "b", "payout": "2.500 SBD"}]
    block = adapter.block({"block_num": 6, "timestamp": "2017-01-01T00:00:00",
                           "virtual_ops": [steem]})
    assert block.records[0].amount == 2500
