"""A stored block the node no longer agrees with: find where the two part, rewind there.

Why: the daemon writes irreversible blocks only, so an honest node never takes one back; but a
faulty node (or one that served a fork as irreversible) can make us store a wrong block, and
every later block then fails the ``previous`` check (:func:`indexer.chain.linked`) for good.
As hivemind's ``Blocks.verify_head`` does at startup (hive/indexer/blocks.py: walk back from
the head comparing stored hashes with the node's until they agree, "fork too deep" past 25),
the walk compares the stored ids of the undo window (``undo_blocks``) with the node's, newest
first, and rewinds the database to the newest block they agree on with the undo log, which
restores every table exactly (HAF's ``hive.back_from_fork`` over its shadow tables). Beyond
the window it stops with the mismatch, naming ``curation-market rewind``.

Only an irreversible block of the node is compared: a block above the node's LIB can still
change there, and is no evidence against ours.
"""

from __future__ import annotations

import logging

from curation_market.daemon.context import Context, new_fetcher, new_ingester
from indexer.chain import ChainMismatch

log = logging.getLogger("curation.daemon")


def fork_point(ctx: Context) -> int | None:
    """The block to rewind to, or None when the node agrees with our checkpoint (or cannot
    tell yet). Raises :class:`ChainMismatch` when no stored block of the window agrees."""
    window = ctx.store.undo_window()
    checkpoint = window.checkpoint
    if not checkpoint or not window.checkpoint_id:
        return None
    node = ctx.node = ctx.client.state()
    if checkpoint > node.irreversible:
        return None
    theirs = ctx.client.block_id(checkpoint)
    if theirs is None or theirs == window.checkpoint_id:
        return None
    for num in sorted((n for n in window.ids if n < checkpoint), reverse=True):
        if ctx.client.block_id(num) == window.ids[num]:
            return num
    raise ChainMismatch(
        f"the node's block {checkpoint:,} is {theirs[:16]}… but ours is "
        f"{window.checkpoint_id[:16]}…, and no stored block back to the undo horizon, block "
        f"{window.horizon:,}, agrees with the node: the fork is deeper than [ingest] "
        "reversible_blocks. Check the node; `curation-market rewind --to BLOCK` goes back "
        f"by hand no further than block {window.horizon:,}: rebuild from an earlier copy or a "
        "fresh --db beyond it")


def rewind_to_fork(ctx: Context) -> bool:
    """Rewind to the fork point, if there is one; the ingester is then rebuilt from the
    database (and the fetcher, if one runs, restarted after the new checkpoint)."""
    to = fork_point(ctx)
    if to is None:
        return False
    done = ctx.store.rewind(to)
    log.warning("fork: the node's block %d is not the one stored; rewound to block %d where "
                "they agree (blocks %d..%d dropped, %d rows restored from the undo log)",
                done.checkpoint, to, to + 1, done.checkpoint, done.undone)
    ctx.fork_rewinds += 1
    ctx.metrics.rewinds.set(ctx.fork_rewinds)
    ctx.ingester = new_ingester(ctx)
    ctx.metrics.indexed_block.set(to)
    if ctx.fetcher is not None:
        ctx.fetcher.stop()
        ctx.fetcher = new_fetcher(ctx, to + 1)
    return True
