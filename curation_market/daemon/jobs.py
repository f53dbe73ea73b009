"""The daemon's jobs: plain functions of a :class:`~curation_market.daemon.context.Context`.

Nothing here knows about APScheduler: :mod:`curation_market.daemon.run` calls them on a timer
(one background thread each, never two runs of one job at once), and a test calls them itself.

- :func:`follow`: drain what the fetcher thread queued, check ``previous`` links, write through
  the same :class:`~indexer.ingest.Ingester` as ``replay`` (state and checkpoint in one
  transaction per batch). Settlement happens inside it, at the block carrying a post's payout,
  so it is driven by chain time only. In head mode it then calls :func:`show_provisional`.
- :func:`show_provisional`: the reversible blocks applied in memory to a throwaway state,
  never written as market state.
- :func:`sweep`: counts markets whose payout time (chain time) has passed with no payout seen.
- :func:`upkeep`: counts the author history inside the rule set's window (chain time); the
  averages themselves are computed at settlement from that history.
- :func:`health`: node head, LIB, staleness (the one use of wall-clock time), rolling figures
  into ``node_status`` for ``status``, then :func:`sweep`.

Every read and write of the database goes through :class:`~indexer.store.Store`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from curation.market import Applier
from curation_market.daemon.context import Context
from curation_market.daemon.forks import rewind_to_fork
from curation_market.daemon.status import publish_progress, write_status
from indexer.chain import Batch, ChainError, ChainMismatch, linked
from indexer.ingest import Stats

log = logging.getLogger("curation.daemon")
# A post pays out this long after it was created (chain time): HIVE_CASHOUT_WINDOW_SECONDS
# and STEEM_CASHOUT_WINDOW_SECONDS, 60*60*24*7 since HF12 (protocol/config.hpp of hive and
# steem, the non-testnet branch).
PAYOUT_SECONDS = 7 * 86400


# --- follow ---------------------------------------------------------------------------------
def follow(ctx: Context) -> Stats | None:
    """Write everything the fetcher has queued; one or more batches, then return."""
    assert ctx.fetcher is not None, "start(ctx) first"
    with ctx.write_lock:
        meta = ctx.ingester.state.meta
        ctx.counted = (0, 0)
        try:
            stats = ctx.ingester.run(
                linked(_blocks(ctx, ctx.fetcher.drain()), meta.last_block, meta.last_block_id),
                progress=lambda s: _progress(ctx, s), stop=ctx.stopping.is_set)
        except ChainMismatch:
            # a stored block the node now disagrees with (a faulty node before a failover):
            # rewound to where they agree, the next run goes on from there; else the mismatch
            if not rewind_to_fork(ctx):
                raise
            publish_progress(ctx)
            return None
        _count(ctx, stats)
        publish_progress(ctx)
        if ctx.until is not None and ctx.ingester.checkpoint >= ctx.until:
            ctx.stopping.set()
        if ctx.head_mode and not ctx.stopping.is_set():
            show_provisional(ctx)
        return stats


def _progress(ctx: Context, stats: Stats) -> None:
    """After each committed batch: a catch-up is one long follow run, so the rates and
    the status row are refreshed from here too (the status row at most once a second)."""
    _count(ctx, stats)
    ctx.metrics.indexed_block.set(stats.last_block)
    ctx.batch_log(stats, ctx.node.irreversible if ctx.node is not None else None)
    if time.monotonic() - ctx.published >= 1.0:
        publish_progress(ctx)


def _count(ctx: Context, stats: Stats) -> None:
    """Add what ``stats`` (cumulative over one follow run) holds beyond what was added."""
    blocks, ops = stats.blocks - ctx.counted[0], stats.ops - ctx.counted[1]
    if blocks:
        ctx.rolling.add(blocks, ops)
    ctx.counted = (stats.blocks, stats.ops)


def _blocks(ctx: Context, batches: Iterator[Batch]) -> Iterator[dict]:
    for batch in batches:
        ctx.node = batch.node
        yield from batch.blocks


# --- head mode ------------------------------------------------------------------------------
def show_provisional(ctx: Context) -> None:
    """Apply the reversible blocks to a throwaway state: what the head shows right now.

    Recomputed from the irreversible state every tick, never written as market state, so a
    fork needs no rollback: the next tick simply no longer contains the orphaned blocks.
    """
    try:
        _show_provisional(ctx)
    except ChainError as exc:  # a lagging node or a fork mid-batch: nothing to show now
        log.info("provisional view skipped: %s", exc)
        ctx.provisional = {}


def _show_provisional(ctx: Context) -> None:
    node = ctx.client.state()
    ctx.node = node
    first = ctx.ingester.checkpoint + 1
    if first > node.head or node.head - first >= ctx.settings.node.batch_size:
        # nothing reversible yet, or still catching up: the view would be stale at once
        ctx.provisional = {}
        return
    raws = ctx.client.blocks(first, node.head, include_reversible=True)
    if not raws:  # the node's history has no trustworthy ops for them yet
        ctx.provisional = {}
        return
    ids = {r["block_num"]: r["block_id"] for r in raws}
    if any(ctx.shown_ids.get(n, i) != i for n, i in ids.items()):
        ctx.forks_seen += 1
        ctx.metrics.forks.set(ctx.forks_seen)
        log.info("fork: reversible blocks replaced; provisional view recomputed")
    ctx.shown_ids = ids
    state = ctx.store.new_state()
    meta = state.meta
    blocks = [ctx.ingester.adapter.block(r) for r in
              linked(iter(raws), meta.last_block, meta.last_block_id)]
    ctx.store.prefetch(state, blocks)
    applier = Applier(state, ctx.cfg)
    for b in blocks:
        applier.apply(b)
    commits = [c for c in state.commits.values() if c is not None and c.block >= first]
    ctx.provisional = {
        "from_block": first, "to_block": raws[-1]["block_num"],
        "head_id": raws[-1]["block_id"],
        "new_posts": sum(1 for p in state.posts.values() if p is not None
                         and p.block >= first),
        "commits": len(commits),
        "reveals": sum(1 for c in state.commits.values()
                       if c is not None and (c.reveal_block or 0) >= first),
        "settlements": len(state.settled), "rejections": len(state.rejections),
    }
    ctx.metrics.provisional_blocks.set(len(raws))
    write_status(ctx)


# --- sweep, upkeep, health ------------------------------------------------------------------
def sweep(ctx: Context) -> None:
    """Markets past payout time by chain time without a payout op (should stay 0)."""
    counts = ctx.store.market_counts(PAYOUT_SECONDS)
    ctx.metrics.overdue_markets.set(counts.overdue)
    ctx.metrics.settlements.set(counts.settled)
    for reason, count in counts.rejected.items():
        ctx.metrics.rejected_ops.labels(reason=reason).set(count)


def upkeep(ctx: Context) -> int:
    """Author history inside the window (chain time): the size the averages draw on."""
    n = ctx.store.author_history_count(ctx.cfg.rules.author_window)
    log.info("author history inside the window: %d entries", n)
    return n


def health(ctx: Context) -> None:
    try:
        ctx.node = ctx.client.state()
    except ChainError as exc:
        log.warning("node unreachable: %s", exc)
        publish_progress(ctx)  # still running: ``status`` must not call it stopped
        return
    age = int(time.time() - ctx.node.head_time)
    stale = age > ctx.settings.node.stale_seconds
    if stale and not ctx.stale:  # said when it happens, not at every health tick
        log.warning("node %s is stale: head block %d is %ds old (the metric node_stale "
                    "stays 1 while it lasts)", ctx.node.url, ctx.node.head, age)
    elif ctx.stale and not stale:
        log.info("node %s is fresh again: head block %d", ctx.node.url, ctx.node.head)
    ctx.stale = stale
    ctx.metrics.node_stale.set(1 if stale else 0)
    ctx.metrics.failovers.set(ctx.client.failovers)
    publish_progress(ctx)
    sweep(ctx)
