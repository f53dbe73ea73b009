"""Post dumps (get_content objects with timed ``active_votes``) → block dicts in chain order.

Rebuilding the op stream lets a dump go through the very pipeline a node's blocks go through:
a ``comment`` at ``created``, each vote at its ``time`` as a ``vote`` op plus an
``effective_comment_vote`` virtual op with its rshares, and at ``last_payout`` the payout
virtual ops carrying F. Block numbers come from chain time and one anchor (3-second blocks).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from indexer.amounts import DOLLAR, amount_of
from indexer.ops import chain_time, format_time

BLOCK_INTERVAL = 3
NEVER = "1970-01-01T00:00:00"
STEEM_17M = (17_000_000, "2017-11-07T01:25:09")  # the dump's own head block and its time


@dataclass(frozen=True, slots=True)
class Anchor:
    block: int
    time: int

    @classmethod
    def of(cls, block: int, timestamp: str) -> Anchor:
        return cls(block, chain_time(timestamp))

    def block_at(self, t: int) -> int:
        return self.block + (t - self.time) // BLOCK_INTERVAL

    def time_of(self, block: int) -> int:
        return self.time + (block - self.block) * BLOCK_INTERVAL


def block_id(num: int, salt: str = "") -> str:
    """A stable id with the block number in its first 8 hex digits, as on chain."""
    return f"{num:08x}" + hashlib.sha1(f"{salt}{num}".encode()).hexdigest()[:32]


@dataclass
class Events:
    """Transactions and virtual ops per block number, before blocks are assembled."""

    txs: dict[int, list[tuple[tuple, list]]]
    vops: dict[int, list[tuple[tuple, list]]]

    @classmethod
    def empty(cls) -> Events:
        return cls(defaultdict(list), defaultdict(list))

    def tx(self, block: int, order: tuple, ops: list) -> None:
        self.txs[block].append((order, ops))

    def vop(self, block: int, order: tuple, op: list) -> None:
        self.vops[block].append((order, op))


def post_events(post: dict, anchor: Anchor, events: Events, settle_pending: bool = False) -> None:
    """Add one post's comment, votes and payout to ``events``."""
    author, permlink = post["author"], post["permlink"]
    created = chain_time(post["created"])
    comment = ["comment", {
        "parent_author": post.get("parent_author", ""),
        "parent_permlink": post.get("parent_permlink", ""),
        "author": author, "permlink": permlink, "title": post.get("title", ""), "body": "",
        "json_metadata": "",
    }]
    ops = [comment]
    options = _options(post)
    if options:
        ops.append(["comment_options", options])
    events.tx(anchor.block_at(created), (created, 0, author, permlink), ops)

    for vote in post.get("active_votes") or []:
        if not vote.get("time"):
            continue  # votes without a time cannot be placed on the chain
        t = chain_time(vote["time"])
        block = anchor.block_at(t)
        voter = vote["voter"]
        order = (t, 1, author, permlink, voter)
        events.tx(block, order, [["vote", {"voter": voter, "author": author,
                                           "permlink": permlink,
                                           "weight": int(vote.get("percent", 0))}]])
        events.vop(block, order, ["effective_comment_vote", {
            "voter": voter, "author": author, "permlink": permlink,
            "weight": int(vote.get("weight", 0) or 0), "rshares": int(vote["rshares"]),
        }])

    payout = _payout(post, settle_pending)
    if payout is not None:
        t, final, curator = payout
        block = anchor.block_at(t)
        order = (t, 2, author, permlink)
        events.vop(block, order, ["comment_reward", {
            "author": author, "permlink": permlink, "payout": sbd(final),
            "total_payout_value": sbd(final - curator), "curator_payout_value": sbd(curator),
            "beneficiary_payout_value": sbd(0),
        }])
        events.vop(block, (t, 3, author, permlink),
                   ["comment_payout_update", {"author": author, "permlink": permlink}])


def _options(post: dict) -> dict | None:
    cap = post.get("max_accepted_payout")
    benef = post.get("beneficiaries") or []
    if (cap is None or cap == "1000000.000 SBD") and not benef:
        return None
    return {
        "author": post["author"], "permlink": post["permlink"],
        "max_accepted_payout": cap or "1000000.000 SBD",
        "percent_steem_dollars": post.get("percent_steem_dollars", 10000),
        "allow_votes": True, "allow_curation_rewards": True,
        "extensions": [[0, {"beneficiaries": benef}]] if benef else [],
    }


def _payout(post: dict, settle_pending: bool) -> tuple[int, int, int] | None:
    """(time, F, curator part) for paid posts; pending ones only when asked (an estimate)."""
    last = post.get("last_payout") or NEVER
    if last > NEVER:
        total = amount_of(post.get("total_payout_value", "0.000 SBD"), DOLLAR)
        curator = amount_of(post.get("curator_payout_value", "0.000 SBD"), DOLLAR)
        return chain_time(last), total + curator, curator
    cashout = post.get("cashout_time") or NEVER
    if settle_pending and cashout > NEVER:
        pending = amount_of(post.get("pending_payout_value", "0.000 SBD"), DOLLAR)
        return chain_time(cashout), pending, pending // 4
    return None


def sbd(milli: int) -> str:
    """Milli-units as a legacy SBD amount string."""
    return f"{milli // 1000}.{milli % 1000:03d} SBD"


def assemble(events: Events, anchor: Anchor, salt: str = "") -> Iterator[dict]:
    """Blocks in number order; empty blocks are left out (numbers may skip)."""
    for num in sorted(set(events.txs) | set(events.vops)):
        txs = [ops for _, ops in sorted(events.txs.get(num, []), key=lambda e: e[0])]
        vops = [op for _, op in sorted(events.vops.get(num, []), key=lambda e: e[0])]
        yield {
            "block_num": num,
            "block_id": block_id(num, salt),
            "previous": block_id(num - 1, salt),
            "timestamp": format_time(anchor.time_of(num)),
            "transactions": [{"operations": ops} for ops in txs],
            "virtual_ops": vops,
        }


def import_posts(posts: Iterable[dict], anchor: Anchor | None = None,
                 settle_pending: bool = False, extra: Events | None = None) -> list[dict]:
    """The blocks of a whole dump; ``extra`` adds further transactions (e.g. simulated ones)."""
    anchor = anchor or Anchor.of(*STEEM_17M)
    events = extra or Events.empty()
    for post in posts:
        post_events(post, anchor, events, settle_pending)
    return list(assemble(events, anchor))
