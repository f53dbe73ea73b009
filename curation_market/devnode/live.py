"""Live posts for the development node: real posts and their votes, shifted to the node's
chain time, appearing in the blocks it produces (``devnode --live``).

Why: the demo chain's posts were all paid in 2017, so there is nothing open to predict on.
Replaying the bundled real posts (``data/steem17m_posts.jsonl.gz``, the block-17M slice)
into the node's future blocks gives the page's dialog, ``curator --auto-reveal`` and the
daemon's settlement something live to work on, on chain time.

What a live post brings, built by the same :func:`indexer.postdump.post_events` that
``import-posts`` uses: the ``comment`` at its shifted ``created``, each timed vote at its
own offset from the post (a ``vote`` op and its ``effective_comment_vote`` virtual op with
the real rshares), and at the payout the ``comment_reward`` (F in ``payout`` and hived's
``total_payout_value``/``curator_payout_value``/``beneficiary_payout_value``) followed by
``comment_payout_update``, in that order, as hived's ``database::cashout_comment_helper``
pushes them (``libraries/chain/database.cpp``; ``comment_payout_update_operation`` last).
hived also pushes ``curation_reward``, ``comment_benefactor_reward`` and ``author_reward``
before them; a post dump does not hold how each was split among curators and between HBD,
HIVE and VESTS, so those are not made up here (the market reads F from ``comment_reward``).

Timing, all in chain time (3 s per block; the node's ``--interval``/``--step`` make the
clock fast, never a wall-clock sleep in this logic):

* the first post appears ``lead`` seconds after the node's last block, the others keep the
  real spacing between their ``created`` times, or ``spacing`` seconds apart when given;
* each post is paid ``payout_after`` seconds after it appears when given, else after its
  real delay (7 days in 2017); votes later than the payout are left out. A post the dump
  shows still pending is paid at its (shifted) cashout with its pending value, as
  ``import-posts --settle-pending`` does: an estimate, not chain history. A paid post whose
  F the dump does not state exactly is refused, as by ``import-posts``.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass

from indexer.ops import chain_time, format_time
from indexer.postdump import Anchor, Events, Refusal, post_events


@dataclass(frozen=True)
class LivePlan:
    blocks: dict[int, dict]  # block number → {"timestamp", "transactions"}
    vops: dict[int, list[list]]  # block number → virtual ops, in order
    posts: list[dict]  # the shifted posts (for get_active_votes / get_content)
    refused: list[str]


def shift_post(post: dict, created: int, payout_after: int | None) -> dict:
    """The post as if written at ``created``: every time moved by the same amount, the
    payout moved to ``created + payout_after`` when given (votes after it dropped)."""
    delta = created - chain_time(post["created"])
    out = dict(post)
    out["created"] = format_time(created)
    t_paid = None
    for key in ("last_payout", "cashout_time", "payout_at"):  # paid, pending, bridge
        when = str(post.get(key) or "")[:19]
        if when > "1970-01-01T00:00:00":
            t = created + payout_after if payout_after is not None else chain_time(when) + delta
            out[key] = format_time(t)
            t_paid = t if t_paid is None else min(t_paid, t)
    votes = []
    for v in post.get("active_votes") or []:
        if not v.get("time"):
            continue
        t = chain_time(v["time"]) + delta
        if t_paid is not None and t >= t_paid:
            continue
        votes.append({**v, "time": format_time(t)})
    out["active_votes"] = votes
    return out


def plan(posts: Iterable[dict], anchor: Anchor, lead: int = 60, spacing: int | None = None,
         payout_after: int | None = None, roots_only: bool = True,
         taken: Container[tuple[str, str]] = ()) -> LivePlan:
    """The blocks after ``anchor`` that carry ``posts`` (oldest first), shifted. A post whose
    ``(author, permlink)`` is ``taken`` (the chain already has it: ``--demo`` serves these
    very posts, paid in 2017) gets ``-live`` appended to its permlink, else its comment would
    be an edit of the old post, not a new market."""
    chosen = sorted((p for p in posts if not roots_only or not p.get("parent_author")),
                    key=lambda p: (str(p["created"]), p["author"], p["permlink"]))
    events = Events.empty()
    shifted, refused = [], []
    if chosen:
        t0 = chain_time(chosen[0]["created"])
        start = anchor.time + lead
        for i, post in enumerate(chosen):
            offset = i * spacing if spacing is not None else chain_time(post["created"]) - t0
            moved = shift_post(post, start + offset, payout_after)
            while (moved["author"], moved["permlink"]) in taken:
                moved["permlink"] += "-live"
            got = post_events(moved, anchor, events, settle_pending=True)
            if isinstance(got, Refusal):
                refused.append(got.message(moved, f"live post #{i + 1}"))
                continue
            shifted.append(moved)
    blocks: dict[int, dict] = {}
    for num in sorted(events.txs):
        txs = [ops for _, ops in sorted(events.txs[num], key=lambda e: e[0])]
        blocks[num] = {"timestamp": format_time(anchor.time_of(num)),
                       "transactions": [{"operations": ops} for ops in txs]}
    vops = {num: [op for _, op in sorted(items, key=lambda e: e[0])]
            for num, items in events.vops.items()}
    return LivePlan(blocks, vops, shifted, refused)
