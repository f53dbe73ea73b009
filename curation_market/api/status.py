"""``/api/status``: the indexed head, the lag, the rules and windows, the dollar token."""

from __future__ import annotations

import time

from fastapi import APIRouter

from curation_market.api.common import Conn, Ctx, head, respond
from indexer.readmodel import iso, market_windows

router = APIRouter(tags=["status"])


@router.get("/api/status")
def status(conn: Conn, ctx: Ctx) -> dict:
    """Indexed head and lag. Lag is the only wall-clock figure served (it decides nothing)."""
    h = head(conn)
    lag = max(0, int(time.time()) - h.time) if h.time else None
    win = market_windows(conn)  # the database's (None: it recorded none yet)
    return respond(h, head_block_id=h.block_id, head_time=iso(h.time) if h.time else None,
                   lag_seconds=lag, rules=h.rules,
                   window_seconds=win.window if win else None,
                   reveal_period_seconds=win.reveal_period if win else None,
                   currency=ctx.currency)
