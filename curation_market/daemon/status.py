"""What the daemon tells the operator: the metrics and the ``node_status`` row it publishes,
and :func:`status`, which ``curation-market status`` prints from that row."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson
from sqlalchemy import Engine

from indexer.chain import NodeClient
from indexer.store import read_node_status

if TYPE_CHECKING:
    from curation_market.daemon.context import Context

STALE_INTERVALS = 3  # a status row older than this many health intervals: not running


def publish_progress(ctx: Context) -> None:
    """Metrics and the status row from what is known; asks the node nothing (a node that is
    down must not delay a stop)."""
    ctx.published = time.monotonic()
    meta = ctx.ingester.state.meta
    m = ctx.metrics
    m.indexed_block.set(meta.last_block)
    bps, ops = ctx.rolling.rates()
    m.blocks_per_second.set(bps)
    m.ops_per_second.set(ops)
    if ctx.node is not None:
        m.irreversible_block.set(ctx.node.irreversible)
        m.head_block.set(ctx.node.head)
        m.lag_blocks.set(max(0, ctx.node.irreversible - meta.last_block))
        if meta.last_time:
            m.lag_seconds.set(max(0, ctx.node.head_time - meta.last_time))
    write_status(ctx)


def write_status(ctx: Context) -> None:
    node = ctx.node
    if node is None:
        return
    bps, ops = ctx.rolling.rates()
    ctx.store.write_node_status({
        "url": node.url, "head": node.head, "irreversible": node.irreversible,
        "head_time": node.head_time, "ops_per_second": ops, "blocks_per_second": bps,
        "checked_at": int(time.time()),
        "metrics_port": ctx.metrics_port if ctx.serve_metrics else 0,
        "provisional": orjson.dumps(ctx.provisional).decode()})


def status(engine: Engine, client: NodeClient | None = None, health_seconds: float = 10.0,
           now: float | None = None) -> dict:
    """What ``curation-market status`` prints: from the database, fresh from a node if given.

    The daemon rewrites its status row at least every ``health_seconds`` (wall clock) while it
    runs (and after every follow run, about once a second), so a row older than
    ``STALE_INTERVALS`` of them (3 s at least) means it is not running: the rates it holds are
    then history and are reported as 0, with the last ones beside them. The row's age is
    given in wall time and, with a node, in chain time too.
    """
    meta, row = read_node_status(engine)
    doc = {"indexed_block": meta["last_block"], "indexed_time": meta["last_time"]}
    node = dict(row) if row else {}
    if row:
        age = max(0, int((time.time() if now is None else now) - row["checked_at"]))
        limit = max(STALE_INTERVALS * health_seconds, 3.0)
        running = age <= limit
        doc |= {"daemon": "running" if running else "not running",
                "status_written": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                time.gmtime(row["checked_at"])),
                "status_age_seconds": age, "status_stale_after_seconds": int(limit),
                "status_head_block": row["head"], "status_head_time": row["head_time"]}
        if not running:
            doc |= {"last_ops_per_second": round(row["ops_per_second"], 1),
                    "last_blocks_per_second": round(row["blocks_per_second"], 1)}
            node |= {"ops_per_second": 0.0, "blocks_per_second": 0.0}
    if client is not None:
        s = client.state()
        node |= {"url": s.url, "head": s.head, "irreversible": s.irreversible,
                 "head_time": s.head_time}
        if row:  # how far the chain moved since the row was written
            doc |= {"status_age_blocks": max(0, s.head - row["head"]),
                    "status_age_chain_seconds": max(0, s.head_time - row["head_time"])}
    if node:
        doc |= {"node": node.get("url"), "head_block": node.get("head"),
                "irreversible_block": node.get("irreversible"),
                "lag_blocks": max(0, (node.get("irreversible") or 0) - meta["last_block"]),
                "lag_seconds": max(0, (node.get("head_time") or 0) - meta["last_time"])
                if meta["last_time"] else None,
                "ops_per_second": round(node.get("ops_per_second") or 0.0, 1),
                "blocks_per_second": round(node.get("blocks_per_second") or 0.0, 1),
                "metrics_port": node.get("metrics_port") or None,
                "provisional": orjson.loads(node["provisional"]) if node.get("provisional")
                else {}}
    return doc
