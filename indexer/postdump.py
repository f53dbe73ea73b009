"""Post dumps (post objects with timed ``active_votes``) → block dicts in chain order.

Post objects: steemd/hived ``get_content`` and ``find_comments``, hivemind's condenser,
database and bridge posts; F is read from each one's own payout fields, or the post is refused
(:func:`payout_of`).

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
from decimal import Decimal, InvalidOperation

from curation.chaintime import chain_time, format_time
from curation.payload import format_milli
from indexer.amounts import DOLLAR, AmountError, amount_of
from indexer.ops import BadBlock

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


@dataclass(frozen=True, slots=True)
class Payout:
    """What the dump says the chain paid (or, for an estimate, would pay) and when."""

    time: int
    final: int  # F, milli-units: author + curators + beneficiaries
    curator: int
    beneficiary: int = 0


@dataclass(frozen=True, slots=True)
class Refusal:
    """A paid post whose F the dump does not state exactly: it is left out, never guessed."""

    reason: str
    fields: tuple[str, ...]

    def message(self, post: dict, where: str) -> str:
        return (f"{where}: @{post.get('author', '?')}/{post.get('permlink', '?')}: "
                f"{self.reason} (fields: {', '.join(self.fields)})")


class PostRefused(ValueError):
    """Raised by :func:`import_posts` when refusals have nowhere to be recorded."""


def post_events(post: dict, anchor: Anchor, events: Events, settle_pending: bool = False,
                beneficiaries_included: bool = False) -> Payout | Refusal | None:
    """Add one post's comment, votes and payout to ``events``; say how it settles.

    None means pending (no payout in the dump). A paid post whose F cannot be read exactly
    adds nothing and comes back as a :class:`Refusal`: a market that could never settle is
    worse than no market.
    """
    payout = payout_of(post, settle_pending, beneficiaries_included)
    if isinstance(payout, Refusal):
        return payout
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
    own = Events.empty()  # filled first, merged only once the whole post has been read
    own.tx(anchor.block_at(created), (created, 0, author, permlink), ops)

    for vote in post.get("active_votes") or []:
        if not vote.get("time"):
            continue  # votes without a time cannot be placed on the chain
        t = chain_time(vote["time"])
        block = anchor.block_at(t)
        voter = vote["voter"]
        order = (t, 1, author, permlink, voter)
        own.tx(block, order, [["vote", {"voter": voter, "author": author,
                                        "permlink": permlink,
                                        "weight": int(vote.get("percent", 0))}]])
        own.vop(block, order, ["effective_comment_vote", {
            "voter": voter, "author": author, "permlink": permlink,
            "weight": int(vote.get("weight", 0) or 0), "rshares": int(vote["rshares"]),
        }])

    if payout is not None:
        block = anchor.block_at(payout.time)
        order = (payout.time, 2, author, permlink)
        author_part = payout.final - payout.curator - payout.beneficiary
        own.vop(block, order, ["comment_reward", {
            "author": author, "permlink": permlink, "payout": sbd(payout.final),
            "total_payout_value": sbd(author_part), "curator_payout_value": sbd(payout.curator),
            "beneficiary_payout_value": sbd(payout.beneficiary),
        }])
        own.vop(block, (payout.time, 3, author, permlink),
                ["comment_payout_update", {"author": author, "permlink": permlink}])
    for num, items in own.txs.items():
        events.txs[num] += items
    for num, items in own.vops.items():
        events.vops[num] += items
    return payout


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


BRIDGE_PAID = ("is_paidout", "payout_at", "author_payout_value", "curator_payout_value")
OBJECT_PAID = ("last_payout", "total_payout_value", "curator_payout_value")


def payout_of(post: dict, settle_pending: bool = False,
              beneficiaries_included: bool = False) -> Payout | Refusal | None:
    """F of a paid post from its own fields, an estimate for a pending one when asked, else None.

    Two families of shapes (docs/node.md, "Post dumps"):

    * node/database post objects (steemd/hived ``get_content``, ``find_comments``, and
      hivemind's condenser/database objects): paid when ``last_payout`` is set;
      F = ``total_payout_value + curator_payout_value + beneficiary_payout_value``.
    * hivemind bridge posts: paid when ``is_paidout``; hivemind writes
      ``author_payout_value = payout - curator_payout_value`` (create_bridge_post_object.sql),
      so F = ``author_payout_value + curator_payout_value``, cross-checked with ``payout``.

    steemd's total_payout_value leaves the beneficiaries out (database.cpp
    ``adjust_total_payout``) and no steemd API shows ``beneficiary_payout_value``; hivemind
    before HAF summed those same two fields, hivemind since HAF sums all three. A paid post with
    beneficiaries and no ``beneficiary_payout_value`` is therefore refused unless the caller
    knows its dump includes them (``beneficiaries_included``).
    """
    try:
        if "is_paidout" in post:
            return _bridge_payout(post, settle_pending, beneficiaries_included)
        return _object_payout(post, settle_pending, beneficiaries_included)
    except (AmountError, BadBlock, InvalidOperation, TypeError, ValueError) as exc:
        fields = BRIDGE_PAID if "is_paidout" in post else OBJECT_PAID
        return Refusal(f"unreadable payout field: {exc}", fields)


def _bridge_payout(post: dict, settle_pending: bool,
                   included: bool) -> Payout | Refusal | None:
    if post["is_paidout"] is not True:
        if post["is_paidout"] is not False:
            return Refusal(f"is_paidout is {post['is_paidout']!r}", ("is_paidout",))
        if settle_pending and post.get("payout_at"):
            return _estimate(post, chain_time(post["payout_at"]))
        return None
    missing = tuple(k for k in BRIDGE_PAID if post.get(k) is None)
    if missing:
        return Refusal("paid bridge post without its payout fields", missing)
    author = amount_of(post["author_payout_value"], DOLLAR)
    curator = amount_of(post["curator_payout_value"], DOLLAR)
    final = author + curator
    stated = post.get("payout")
    if stated is not None and _milli(stated) != final:
        return Refusal(f"author_payout_value + curator_payout_value = {sbd(final)} "
                       f"but payout = {stated}",
                       ("author_payout_value", "curator_payout_value", "payout"))
    if post.get("beneficiaries") and not included:
        return _unknown_beneficiaries(("author_payout_value", "curator_payout_value",
                                       "beneficiaries"))
    return Payout(chain_time(post["payout_at"]), final, curator)


def _object_payout(post: dict, settle_pending: bool,
                   included: bool) -> Payout | Refusal | None:
    last = post.get("last_payout") or NEVER
    if last > NEVER:
        missing = tuple(k for k in OBJECT_PAID[1:] if post.get(k) is None)
        if missing:
            return Refusal("paid post without its payout fields", missing)
        total = amount_of(post["total_payout_value"], DOLLAR)
        curator = amount_of(post["curator_payout_value"], DOLLAR)
        if "beneficiary_payout_value" in post:
            benef = amount_of(post["beneficiary_payout_value"], DOLLAR)
        elif post.get("beneficiaries") and not included:
            return _unknown_beneficiaries(("total_payout_value", "curator_payout_value",
                                           "beneficiaries"))
        else:
            benef = 0
        return Payout(chain_time(last), total + curator + benef, curator, benef)
    cashout = post.get("cashout_time") or NEVER
    if settle_pending and cashout > NEVER:
        return _estimate(post, chain_time(cashout))
    return None


def _estimate(post: dict, t: int) -> Payout:
    """A pending post paid at its cashout with its pending value: not chain history."""
    pending = amount_of(post.get("pending_payout_value", "0.000 SBD"), DOLLAR)
    return Payout(t, pending, pending // 4)


def _unknown_beneficiaries(fields: tuple[str, ...]) -> Refusal:
    return Refusal("paid post with beneficiaries but no beneficiary_payout_value: its payout "
                   "fields may or may not include the beneficiaries' part "
                   "(--beneficiaries-included if the dump is from a hivemind that sums them)",
                   fields)


def _milli(value: object) -> int:
    """A hivemind ``payout`` (a JSON number with 3 decimals) in milli-units, without a float."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"payout is {value!r:.40}")
    milli = Decimal(str(value)) * 1000
    if milli != milli.to_integral_value():
        raise ValueError(f"payout {value!r:.40} has more than 3 decimals")
    return int(milli)


def sbd(milli: int) -> str:
    """Milli-units as a legacy SBD amount string."""
    return f"{format_milli(milli)} SBD"


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
                 settle_pending: bool = False, extra: Events | None = None,
                 refused: list[str] | None = None,
                 beneficiaries_included: bool = False) -> list[dict]:
    """The blocks of a whole dump; ``extra`` adds further transactions (e.g. simulated ones).

    Refused posts are described in ``refused`` (as ``post #i: ...``); without that list a
    refusal raises :class:`PostRefused` rather than vanish.
    """
    anchor = anchor or Anchor.of(*STEEM_17M)
    events = extra or Events.empty()
    for i, post in enumerate(posts, 1):
        settled = post_events(post, anchor, events, settle_pending, beneficiaries_included)
        if isinstance(settled, Refusal):
            msg = settled.message(post, f"post #{i}")
            if refused is None:
                raise PostRefused(msg)
            refused.append(msg)
    return list(assemble(events, anchor))
